"""Lambda code for the `lambdas/` package plus its pip dependencies, bundled without Docker.

`pip install --platform manylinux... --only-binary=:all:` fetches the Linux x86_64 wheels for
the Lambda runtime's Python whatever this machine is, so bundling runs locally in seconds.
The pins come from pyproject.toml: one place decides the versions for local mode and Lambda.
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import jsii
from aws_cdk import (
    BundlingFileAccess,
    BundlingOptions,
    BundlingOutput,
    DockerImage,
    DockerVolume,
    ILocalBundling,
)
from aws_cdk import aws_lambda as lambda_

log = logging.getLogger(__name__)

LAMBDA_DISTRIBUTIONS: Final = (
    "fastapi",
    "mangum",
    "pydantic",
    "pydantic-settings",
    "pyjwt",
    "boto3",
)
"""What the control plane needs. The runtime ships a boto3, but without the AWS CRT
(`awscrt`), and the CloudFront KeyValueStore data plane signs its requests with SigV4A, which
botocore can only do with it: pyproject's `boto3[crt]` brings a boto3 and its matching CRT
(a manylinux wheel) into the bundle.
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/kvs-with-functions-kvp-using-api.html
(boto3 signs SigV4A only through the CRT, e.g. https://github.com/boto/boto3/issues/3980)."""

# Lambda's Python 3.12 runtime is Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels and
# the older manylinux2014 ones both load there.
PIP_PLATFORMS: Final = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")


class BundlingError(RuntimeError):
    """Local bundling failed; the message carries pip's output."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_requirements(pyproject: Path, distributions: Sequence[str]) -> tuple[str, ...]:
    """The requirement strings in pyproject's `[project] dependencies` for `distributions`."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    by_name: dict[str, str] = {}
    for spec in project["dependencies"]:
        match = _NAME.match(spec)
        if match:
            by_name[_canonical(match.group(1))] = spec
    missing = [d for d in distributions if _canonical(d) not in by_name]
    if missing:
        raise BundlingError(f"{pyproject} has no dependency entry for {missing}")
    return tuple(by_name[_canonical(d)] for d in distributions)


def pip_install_command(
    *, target: str, requirements: Sequence[str], python_version: str
) -> list[str]:
    platforms = [arg for p in PIP_PLATFORMS for arg in ("--platform", p)]
    return [
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--target",
        target,
        *platforms,
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        *requirements,
    ]


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Runs pip on this machine into the asset's output directory, then copies the package."""

    def __init__(
        self, *, package_dir: Path, requirements: Sequence[str], python_version: str
    ) -> None:
        self._package_dir = package_dir
        self._requirements = tuple(requirements)
        self._python_version = python_version

    def try_bundle(
        self,
        output_dir: str,
        *,
        image: DockerImage,
        bundling_file_access: BundlingFileAccess | None = None,
        command: Sequence[str] | None = None,
        entrypoint: Sequence[str] | None = None,
        environment: Mapping[str, str] | None = None,
        local: ILocalBundling | None = None,
        network: str | None = None,
        output_type: BundlingOutput | None = None,
        platform: str | None = None,
        security_opt: str | None = None,
        user: str | None = None,
        volumes: Sequence[DockerVolume | dict[str, Any]] | None = None,
        volumes_from: Sequence[str] | None = None,
        working_directory: str | None = None,
    ) -> bool:
        out = Path(output_dir)
        pip = pip_install_command(
            target=str(out), requirements=self._requirements, python_version=self._python_version
        )
        # The interpreter running the CDK app has pip; a bare "pip" on PATH might not be it.
        cmd = [sys.executable, "-m", *pip]
        log.info("bundling %s locally: %s", self._package_dir.name, " ".join(cmd))
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BundlingError(
                f"pip failed ({result.returncode}) bundling {self._package_dir}:\n{result.stderr}"
            )
        # Console scripts are useless in Lambda and their shebangs name this machine's Python.
        shutil.rmtree(out / "bin", ignore_errors=True)
        shutil.copytree(self._package_dir, out / self._package_dir.name, ignore=_IGNORED)
        return True


def python_package_code(
    *,
    package_dir: Path,
    pyproject: Path,
    distributions: Sequence[str] = LAMBDA_DISTRIBUTIONS,
    runtime: lambda_.Runtime = lambda_.Runtime.PYTHON_3_12,
) -> lambda_.Code:
    """Asset: `<package_dir.name>/` at the root, its pinned dependencies beside it.

    The Docker command is the same pip call; CDK only uses it when local bundling is not
    offered, and it puts the pins into the asset hash so a version change redeploys.
    """
    requirements = pinned_requirements(pyproject, distributions)
    python_version = runtime.name.removeprefix("python")
    pip = pip_install_command(
        target="/asset-output", requirements=requirements, python_version=python_version
    )
    docker_command = f"{shlex.join(pip)} && cp -r /asset-input /asset-output/{package_dir.name}"
    return lambda_.Code.from_asset(
        str(package_dir),
        bundling=BundlingOptions(
            image=runtime.bundling_image,
            command=["bash", "-c", docker_command],
            local=PipLocalBundling(
                package_dir=package_dir, requirements=requirements, python_version=python_version
            ),
        ),
    )
