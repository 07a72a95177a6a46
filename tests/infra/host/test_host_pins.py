"""What the host installs is pinned: images by digest (one place, images.env), Python
packages by exact version and hash (requirements.lock), the backend image's base from there."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.infra.host.host_boot_support import BOOTSTRAP_DIR

_REQUIREMENT = re.compile(r"^([A-Za-z0-9_.\[\],-]+)==([^\s\\]+)")


def _images() -> dict[str, str]:
    lines = (BOOTSTRAP_DIR / "images.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _lock() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes)."""
    found: dict[str, tuple[str, int]] = {}
    name = ""
    for line in (BOOTSTRAP_DIR / "requirements.lock").read_text().splitlines():
        match = _REQUIREMENT.match(line)
        if match:
            name = match.group(1).lower()
            found[name] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
    return found


@pytest.mark.parametrize("name", ["SPINUP_TRITON_IMAGE", "SPINUP_PYTHON_IMAGE"])
def test_downloaded_images_are_pinned_by_digest(name: str) -> None:
    assert re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}", _images()[name])


def test_the_python_image_is_the_locks_interpreter() -> None:
    assert ":3.11." in _images()["SPINUP_PYTHON_IMAGE"]
    assert "Python 3.11" in (BOOTSTRAP_DIR / "requirements.lock").read_text()


def test_every_locked_package_is_exact_and_hashed() -> None:
    lock = _lock()
    assert len(lock) > 20
    for name, (version, hashes) in lock.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+]*", version), name
        assert hashes >= 1, name


def test_the_lock_has_what_requirements_in_asks_for() -> None:
    lock = _lock()
    for line in (BOOTSTRAP_DIR / "requirements.in").read_text().splitlines():
        match = _REQUIREMENT.match(line)
        if match:
            name = re.sub(r"\[.*\]", "", match.group(1)).lower()
            assert lock[name][0] == match.group(2), name


def test_the_backend_image_installs_by_hash_from_the_pinned_base() -> None:
    dockerfile = (BOOTSTRAP_DIR / "backend.Dockerfile").read_text()
    froms = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert froms == ["FROM ${PYTHON_IMAGE}"]
    assert "pip install --require-hashes" in dockerfile
    assert "requirements.lock" in dockerfile


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((BOOTSTRAP_DIR / "docker-compose.yml").read_text())
    return loaded


@pytest.mark.parametrize("service", ["triton", "backend", "watchdog"])
def test_compose_takes_images_from_images_env_and_never_pulls(service: str) -> None:
    spec = _compose()["services"][service]
    variable = re.fullmatch(r"\$\{(SPINUP_[A-Z_]+):\?from images.env\}", spec["image"])
    assert variable
    assert variable.group(1) in _images()
    assert spec["pull_policy"] == "never"
    assert spec["restart"] == "no"  # systemd owns restarts


def test_the_backend_container_is_hardened_and_on_loopback() -> None:
    backend = _compose()["services"]["backend"]
    assert backend["network_mode"] == "host"
    assert backend["command"][-4:] == ["--host", "127.0.0.1", "--port", "8080"]
    assert backend["user"] == "65534:65534"
    assert backend["read_only"] is True
    assert backend["cap_drop"] == ["ALL"]
    assert backend["security_opt"] == ["no-new-privileges:true"]
