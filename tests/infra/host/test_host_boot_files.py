"""The boot scripts, the compose file and the names they share with the CDK app."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_host.bootstrap import parameters
from infra.config import DeployConfig, release_parameter
from tests.infra.host.host_boot_support import BOOTSTRAP_DIR, SYSTEMD_DIR

SCRIPTS = ("first-boot.sh", "bootstrap.sh")
ASSET_HASH = "a" * 64


def _bash(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", *args],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env=env,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse(script: str) -> None:
    result = subprocess.run(
        ["bash", "-n", str(BOOTSTRAP_DIR / script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_first_boot_refuses_to_run_without_its_inputs() -> None:
    result = subprocess.run(
        ["bash", str(BOOTSTRAP_DIR / "first-boot.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "SPINUP_SSM_PREFIX" in result.stderr


@pytest.mark.parametrize("args", [[], ["bogus"]])
def test_bootstrap_usage(args: list[str]) -> None:
    result = subprocess.run(
        ["bash", str(BOOTSTRAP_DIR / "bootstrap.sh"), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "usage" in result.stderr


def test_bootstrap_install_rejects_a_directory_that_is_no_release(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(BOOTSTRAP_DIR / "bootstrap.sh"), "install", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "not an unpacked release" in result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"s3://cdk-assets-123-us-east-1/{ASSET_HASH}.zip", ASSET_HASH),
        (f"s3://bucket/prefix/{ASSET_HASH}.zip", ASSET_HASH),
    ],
)
def test_release_id_is_the_asset_hash(url: str, expected: str) -> None:
    result = _bash(f'source "{BOOTSTRAP_DIR / "bootstrap.sh"}"; release_id "{url}"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize("url", ["s3://bucket/latest.zip", "s3://bucket/../../etc.zip", ""])
def test_release_id_rejects_anything_else(url: str) -> None:
    result = _bash(f'source "{BOOTSTRAP_DIR / "bootstrap.sh"}"; release_id "{url}"')
    assert result.returncode == 1
    assert "unexpected release URL" in result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_read_the_release_parameter_the_app_writes(script: str) -> None:
    text = (BOOTSTRAP_DIR / script).read_text(encoding="utf-8")
    assert f'"$SPINUP_SSM_PREFIX/{parameters.RELEASE}"' in text
    prefix = DeployConfig().ssm_prefix
    assert release_parameter(prefix) == f"{prefix}/{parameters.RELEASE}"


@pytest.mark.parametrize(
    "path",
    ["/opt/spinup/current", "/usr/local/sbin/spinup-bootstrap", "/etc/spinup/bootstrap.env"],
)
def test_units_and_bootstrap_agree_on_paths(path: str) -> None:
    bootstrap = (BOOTSTRAP_DIR / "bootstrap.sh").read_text(encoding="utf-8")
    units = "\n".join(p.read_text(encoding="utf-8") for p in SYSTEMD_DIR.iterdir())
    name = path.rsplit("/", 1)[-1]
    assert name in bootstrap
    assert path in units


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (BOOTSTRAP_DIR / "docker-compose.yml").read_text(encoding="utf-8")
    )
    return loaded


def test_triton_listens_on_loopback_only() -> None:
    triton = _compose()["services"]["triton"]
    assert triton["network_mode"] == "host"
    command = triton["command"]
    for endpoint in ("http", "grpc", "metrics"):
        assert f"--{endpoint}-address=127.0.0.1" in command
    assert "--grpc-port=8001" in command
    assert "ports" not in triton


def test_triton_gets_the_gpu_and_the_model_repository_read_only() -> None:
    triton = _compose()["services"]["triton"]
    (device,) = triton["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    (volume,) = triton["volumes"]
    assert volume.startswith("${SPINUP_MODEL_REPOSITORY")
    assert volume.endswith(":/models:ro")
    assert triton["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert triton["restart"] == "no"  # systemd owns restarts


def test_triton_grpc_port_matches_the_backend_setting() -> None:
    assert DeployConfig().triton_grpc_port == 8001
