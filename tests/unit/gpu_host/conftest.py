"""Fixtures for the data plane's unit tests (pure code: no servers)."""

from __future__ import annotations

import pytest

from tests.unit.gpu_host.dataplane_unit_support import FakeClock, jpeg_bytes


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def small_jpeg() -> bytes:
    return jpeg_bytes()
