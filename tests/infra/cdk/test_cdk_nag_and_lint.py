"""cdk-nag accepts the app (every finding fixed or acknowledged with a reason), cfn-lint finds
no error in the synthesized templates, and an unacknowledged finding does fail the synth."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from infra.nag import acknowledge, enable_nag
from tests.infra.cdk.cdk_synth_support import BUNDLING_STACKS, Synthesized

CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def test_nag_reports_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    """Given the synthesized app (synth raises on a nag error), then the validation report
    holds no AwsSolutions violation of any severity."""
    report = synthesized.validation_report()
    plugins = report.get("pluginReports", [])
    assert isinstance(plugins, list)
    violations = [
        (v["ruleName"], [c["constructPath"] for c in v["violatingConstructs"]])
        for plugin in plugins
        for v in plugin.get("violations", [])
    ]
    assert violations == []


def test_every_acknowledgment_names_one_finding_and_a_reason(synthesized: Synthesized) -> None:
    """Given the acknowledgments recorded in the assembly, then each names one rule (IAM4/IAM5
    with their finding) and gives a sentence of reason."""
    # CDK acknowledges some of its own template-validation findings; those are not ours.
    acknowledged = {
        key: reason
        for key, reason in synthesized.acknowledgments().items()
        if not key[1].startswith("CloudFormation-Validate::")
    }
    assert len(acknowledged) >= 10
    for (path, rule), reason in acknowledged.items():
        assert "AwsSolutions-" in rule, path
        if "IAM4" in rule or "IAM5" in rule:
            assert "[" in rule, f"{path}: {rule} must name the finding"
        assert len(reason) >= 30, f"{path}: {rule} needs a real reason"


def test_an_unacknowledged_finding_fails_the_synth(tmp_path: Path) -> None:
    """Given a bucket without SSL enforcement or logs, when the app synthesizes with
    cdk-nag on, then synthesis fails and names the rule."""
    app = App(
        outdir=str(tmp_path),
        context={BUNDLING_STACKS: []},
        builtin_cloud_formation_validation=False,
    )
    s3.Bucket(Stack(app, "Careless"), "Bucket")
    enable_nag(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text(encoding="utf-8")
    assert "AwsSolutions-S10" in report


def test_acknowledgment_needs_a_reason(small_stack: Callable[[], Stack]) -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        acknowledge(small_stack(), "AwsSolutions-S1", reason="  ")


def test_cfn_lint_finds_no_errors(synthesized: Synthesized) -> None:
    """cfn-lint errors fail; warnings (W3005: CDK's redundant DependsOn) do not."""
    templates = [str(path) for path in synthesized.template_files()]
    assert len(templates) == 3
    result = subprocess.run(
        [str(CFN_LINT), "--non-zero-exit-code", "error", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
