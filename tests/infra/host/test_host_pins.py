"""What the host installs is pinned: images by digest (one place, images.env), Python
packages by exact version and hash (requirements.lock), the backend image's base from there;
the units run those images and never pull them."""

from __future__ import annotations

import re

import pytest

from tests.infra.host.host_boot_support import (
    BOOTSTRAP_DIR,
    SYSTEMD_DIR,
    docker_run,
    exec_lines,
    images,
)

_REQUIREMENT = re.compile(r"^([A-Za-z0-9_.\[\],-]+)==([^\s\\]+)")


_images = images
CONTAINER_UNITS = (
    "spinup-config.service",
    "spinup-triton.service",
    "spinup-backend.service",
    "spinup-watchdog.service",
)


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


def test_the_verification_has_its_reference_runtime() -> None:
    """`python -m gpu_host.models.verify` runs in the backend image at initialize."""
    assert "onnxruntime" in _lock()
    assert "tritonclient" in _lock()


@pytest.mark.parametrize("unit", CONTAINER_UNITS)
def test_units_run_images_from_images_env_and_never_pull(unit: str) -> None:
    argv = docker_run(unit)
    assert argv[argv.index("--pull") + 1] == "never"
    assert "--rm" in argv
    (image,) = [a for a in argv if a.startswith("${")]
    variable = re.fullmatch(r"\$\{(SPINUP_[A-Z_]+_IMAGE)\}", image)
    assert variable
    assert variable.group(1) in _images()
    environment = " ".join(exec_lines(unit, frozenset({"EnvironmentFile"})))
    text = (SYSTEMD_DIR / unit).read_text(encoding="utf-8")
    assert "EnvironmentFile=/opt/spinup/current/gpu_host/bootstrap/images.env" in text, environment


@pytest.mark.parametrize("unit", CONTAINER_UNITS)
def test_container_logs_are_capped(unit: str) -> None:
    argv = docker_run(unit)
    assert argv[argv.index("--log-driver") + 1] == "json-file"
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "--log-opt"]
    assert re.fullmatch(r"max-size=\d+m", options[0])
    assert re.fullmatch(r"max-file=\d", options[1])


@pytest.mark.parametrize(
    ("unit", "user"),
    [
        ("spinup-backend.service", "65534:65534"),
        ("spinup-config.service", "0:0"),
        ("spinup-watchdog.service", "0:0"),
    ],
)
def test_python_containers_are_hardened(unit: str, user: str) -> None:
    argv = docker_run(unit)
    assert argv[argv.index("--user") + 1] == user
    assert "--read-only" in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--security-opt") + 1] == "no-new-privileges:true"
    assert argv[argv.index("--network") + 1] == "host"


def test_the_backend_listens_on_loopback() -> None:
    argv = docker_run("spinup-backend.service")
    assert argv[-4:] == ["--host", "127.0.0.1", "--port", "8080"]


@pytest.mark.parametrize(
    ("unit", "grace_s"), [("spinup-triton.service", 20), ("spinup-backend.service", 30)]
)
def test_serving_containers_are_named_and_stopped_by_name(unit: str, grace_s: int) -> None:
    argv = docker_run(unit)
    name = argv[argv.index("--name") + 1]
    assert exec_lines(unit, frozenset({"ExecStop"})) == [
        f"/usr/bin/docker stop --time {grace_s} {name}"
    ]
    # A container a crash left behind would hold the name.
    assert exec_lines(unit, frozenset({"ExecStartPre"})) == [f"/usr/bin/docker rm --force {name}"]
