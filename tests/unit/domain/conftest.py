"""Fixtures for the control plane's pure logic: settings, a fixed clock, snapshot builders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lambdas.domain.host_record import HostRecord
from lambdas.domain.model import Ec2State, InstanceView, Snapshot
from lambdas.settings import Settings

NOW = 1_800_000_000.0
"""08:00 UTC: far from midnight, so the daily budget is not cut by the day boundary."""
INSTANCE_ID = "i-0123456789abcdef0"

HostFactory = Callable[..., HostRecord]
SnapshotFactory = Callable[..., Snapshot]


@pytest.fixture
def settings() -> Settings:
    """The documented defaults (docs/architecture.md), with what has no default filled in."""
    return Settings(table_name="spinup-test", instance_id=INSTANCE_ID, auth_mode="apigw")


@pytest.fixture
def now() -> float:
    return NOW


@pytest.fixture
def make_host() -> HostFactory:
    def build(**fields: Any) -> HostRecord:
        return HostRecord(host_id="gpu-0", **fields)

    return build


@pytest.fixture
def make_snapshot(make_host: HostFactory) -> SnapshotFactory:
    """`make_snapshot("running", ready_at=…)`; state None means EC2 does not know the id."""

    def build(state: Ec2State | None, instance_type: str = "g5.xlarge", **fields: Any) -> Snapshot:
        instance = None if state is None else InstanceView(INSTANCE_ID, state, instance_type)
        return Snapshot(host=make_host(**fields), instance=instance)

    return build
