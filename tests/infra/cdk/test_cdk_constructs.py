"""Construct-level behaviour that the full app does not exercise (small stacks, fast)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aws_cdk import Stack, Stage
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template
from packaging.requirements import Requirement

from infra.constructs.cloudfront_prefix_list import CloudFrontPrefixList
from infra.constructs.host_image import host_machine_image
from infra.constructs.host_release import HostRelease
from infra.constructs.python_lambda_code import (
    LAMBDA_DISTRIBUTIONS,
    BundlingError,
    pinned_requirements,
    pip_install_command,
    python_package_code,
)
from infra.paths import LAMBDAS_DIR, PYPROJECT


def test_given_prefix_list_id_needs_no_lookup(small_stack: Callable[[], Stack]) -> None:
    stack = small_stack()
    lists = CloudFrontPrefixList(stack, "PL", prefix_list_id="pl-3b927c52")
    assert lists.prefix_list_id == "pl-3b927c52"
    Template.from_stack(stack).resource_count_is("Custom::AWS", 0)


def test_pinned_image_is_used_verbatim(small_stack: Callable[[], Stack]) -> None:
    stack = small_stack()
    image = host_machine_image(ssm_parameter="/unused", pinned_id="ami-0123456789abcdef0")
    assert image.get_image(stack).image_id == "ami-0123456789abcdef0"


def test_unpinned_image_resolves_the_public_parameter_at_deploy(
    small_stack: Callable[[], Stack],
) -> None:
    stack = small_stack()
    image = host_machine_image(ssm_parameter="/aws/service/x/ami-id", pinned_id=None)
    assert image.get_image(stack).os_type == ec2.OperatingSystemType.LINUX
    parameters = Template.from_stack(stack).to_json()["Parameters"]
    assert "/aws/service/x/ami-id" in [p["Default"] for p in parameters.values()]


def test_lambda_pins_come_from_pyproject() -> None:
    requirements = pinned_requirements(PYPROJECT, ["fastapi", "pyjwt", "pydantic-settings"])
    assert [r.split("=")[0].split("[")[0].lower() for r in requirements] == [
        "fastapi",
        "pyjwt",
        "pydantic-settings",
    ]
    assert all("==" in r or "*" in r for r in requirements)


def test_the_lambda_bundle_carries_boto3_with_the_crt() -> None:
    """The KeyValueStore data plane signs with SigV4A, which botocore does only through the
    CRT (awscrt): the bundle's pip call installs boto3 with its `crt` extra, wheels only."""
    requirements = pinned_requirements(PYPROJECT, LAMBDA_DISTRIBUTIONS)
    (boto3,) = [r for r in map(Requirement, requirements) if r.name == "boto3"]
    assert "crt" in boto3.extras
    command = pip_install_command(target="/out", requirements=requirements, python_version="3.12")
    assert str(boto3) in command
    assert "--only-binary=:all:" in command


def test_unknown_lambda_dependency_is_an_error() -> None:
    with pytest.raises(BundlingError, match="no dependency entry"):
        pinned_requirements(PYPROJECT, ["left-pad"])


def test_pip_targets_the_lambda_platform_with_wheels_only() -> None:
    command = pip_install_command(target="/out", requirements=["a==1"], python_version="3.12")
    assert command[:2] == ["pip", "install"]
    assert "--only-binary=:all:" in command
    assert command[command.index("--python-version") + 1] == "3.12"
    assert "manylinux2014_x86_64" in command
    assert command[-1] == "a==1"


def test_bundling_is_skipped_when_the_context_says_so(
    small_stack: Callable[[], Stack], tmp_path: Path
) -> None:
    """Given `aws:cdk:bundling-stacks` = [] (as in these tests), binding the code runs no pip:
    the asset is the package directory itself."""
    stack = small_stack()
    code = python_package_code(package_dir=LAMBDAS_DIR, pyproject=PYPROJECT)
    config = code.bind(stack)
    assert config.s3_location is not None


def test_host_release_holds_the_host_code_and_the_contracts_it_loads(
    small_stack: Callable[[], Stack],
) -> None:
    """Given the GPU host release asset, then it holds the backend, its units, the socket
    protocol's one source (frontend/js/protocol.json) and the contracts the backend imports
    from `lambdas/` (host record, tickets, settings types, token verifier), and nothing else
    of the repository."""
    stack = small_stack()
    release = HostRelease(stack, "Release", parameter_name="/spinup/release")
    stage = Stage.of(stack)
    assert stage is not None
    staged = Path(stage.outdir) / release.asset.asset_path
    files = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert {
        "frontend/js/protocol.json",
        "gpu_host/backend/protocol.py",
        "lambdas/domain/host_record.py",
        "lambdas/domain/tickets.py",
        "lambdas/settings_types.py",
        "lambdas/jwt_verifier.py",
        "systemd/spinup.target",
        "pyproject.toml",
    } <= files
    assert sorted(f for f in files if f.startswith("frontend/")) == ["frontend/js/protocol.json"]
    tops = {f.split("/")[0] for f in files}
    assert tops == {"frontend", "gpu_host", "lambdas", "systemd", "pyproject.toml"}
