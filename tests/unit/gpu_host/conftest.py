"""Fixtures for the data plane's unit tests (pure code and files: no servers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_host.backend.host_store import HostStore
from tests.unit.gpu_host.dataplane_unit_support import FakeClock, jpeg_bytes


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def small_jpeg() -> bytes:
    return jpeg_bytes()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """The directory of a fresh host store (as the supervisor makes it)."""
    HostStore.create(tmp_path / "state").close()
    return tmp_path / "state"


@pytest.fixture
def host_store(state_dir: Path) -> Iterator[HostStore]:
    """One worker's connection to the host store."""
    store = HostStore.open(state_dir)
    yield store
    store.close()
