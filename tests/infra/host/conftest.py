"""Fixtures for the GPU host's boot pieces: a fake root for systemd, a moto server for AWS."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.host.fakes import INSTANCE_ID, FakeImds, ReadyServer, serving
from tests.infra.host.host_boot_support import SYSTEMD_DIR

# Executables and files the units name; stubs stand in for them inside the fake root.
_STUB_EXECUTABLES = (
    "usr/bin/python3",
    "bin/sh",
    "usr/bin/systemctl",
    "usr/bin/docker",
    "usr/local/sbin/spinup-bootstrap",
    "opt/spinup/current/.venv/bin/python",
)
_STUB_FILES = ("etc/spinup/host.env", "etc/spinup/bootstrap.env")
# Units ours depend on that a build machine may not have.
_STUB_UNITS = {
    "docker.service": "[Unit]\nDescription=stub\n[Service]\nExecStart=/usr/bin/docker\n",
    "nginx.service": "[Unit]\nDescription=stub\n[Service]\nExecStart=/usr/bin/docker\n",
}


@pytest.fixture(scope="session")
def unit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root directory with the distro's units, ours in /etc/systemd/system, and stubs."""
    if shutil.which("systemd-analyze") is None:
        # `make setup` installs it; a silent skip would let the unit checks pass unchecked.
        pytest.fail("systemd-analyze is not installed (scripts/ensure-system-packages.sh)")
    root = tmp_path_factory.mktemp("root")
    system_units = Path("/usr/lib/systemd/system")
    if not system_units.is_dir():
        pytest.fail("no systemd unit directory (/usr/lib/systemd/system) on this machine")
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    for name, text in _STUB_UNITS.items():
        target = root / "usr/lib/systemd/system" / name
        if not target.exists():
            target.write_text(text, encoding="utf-8")
    ours = root / "etc/systemd/system"
    ours.mkdir(parents=True)
    for unit in SYSTEMD_DIR.iterdir():
        shutil.copy(unit, ours / unit.name)
    for relative in _STUB_EXECUTABLES:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n", encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    for relative in _STUB_FILES:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return root


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server (SSM, Secrets Manager, DynamoDB) for the host's AWS adapters."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 at the moto server with fake credentials; reset its state per test."""
    import urllib.request

    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return os.environ["AWS_ENDPOINT_URL"]


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    """Instance metadata of an instance entering the warm pool (tests change `items`)."""
    fake = FakeImds(
        {"instance-id": INSTANCE_ID, "autoscaling/target-lifecycle-state": "Warmed:Stopped"}
    )
    with serving(fake.server):
        yield fake


@pytest.fixture
def backend_ready() -> Iterator[ReadyServer]:
    server = ReadyServer()
    with serving(server.server):
        yield server
