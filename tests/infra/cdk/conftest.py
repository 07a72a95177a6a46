"""Synthesizes the real CDK app once per test session (synth costs seconds on 2 cores).

Bundling of the Lambda code is skipped (`aws:cdk:bundling-stacks` = []): it runs pip, which
`make synth` exercises. Everything else (the three stacks, cdk-nag, feature flags from
cdk.json) is the real app.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

# isort: off
# First: it points jsii at the venv's Node before anything imports aws_cdk.
from tests.infra.cdk.cdk_synth_support import BUNDLING_STACKS, Synthesized, cdk_json_context

# isort: on
import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from infra.app import build_app
from infra.config import DeployConfig
from infra.nag import enable_nag


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    config = DeployConfig()
    app = App(outdir=str(outdir), context={**cdk_json_context(), BUNDLING_STACKS: []})
    gpu, hosting, control = build_app(app, config)
    enable_nag(app)
    app.synth()  # raises if cdk-nag finds an unacknowledged error
    return Synthesized(
        config=config,
        outdir=outdir,
        gpu=Template.from_stack(gpu),
        hosting=Template.from_stack(hosting),
        control=Template.from_stack(control),
    )


@pytest.fixture
def small_stack(tmp_path: Path) -> Callable[[], Stack]:
    """A throwaway app + stack for construct-level tests (no nag, no bundling)."""
    apps: list[App] = []

    def make() -> Stack:
        app = App(
            outdir=str(tmp_path / f"app{len(apps)}"),
            context={**cdk_json_context(), BUNDLING_STACKS: []},
            # These stacks are fragments (a lone parameter, no resources): not deployable.
            builtin_cloud_formation_validation=False,
        )
        apps.append(app)
        return Stack(app, "Test")

    return make
