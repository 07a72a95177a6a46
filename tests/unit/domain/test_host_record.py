"""The records' contract: keys, the backend's fields and the updates it makes, when a run is
ready, and the fleet record's views of its leases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lambdas.domain.host_record import (
    BackendField,
    FleetRecord,
    HostRecord,
    Milestone,
    heartbeat_update,
    host_id_of,
    host_key,
    milestone_update,
    session_key,
    sessions_update,
)
from tests.unit.domain.conftest import NOW, A, B, lease

T0 = NOW - 1000
"""The current run's start."""


def test_keys() -> None:
    """Host ids are instance ids; the key names the record kind."""
    assert host_key("i-0123456789abcdef0") == "host#i-0123456789abcdef0"
    assert host_id_of(host_key("i-0123456789abcdef0")) == "i-0123456789abcdef0"
    assert session_key("abc") == "session#abc"


@pytest.mark.parametrize(
    ("fields", "ready"),
    [
        ({}, None),
        ({"ready_at": T0 + 100}, None),
        ({"ready_at": T0 + 100, "routed_at": T0 + 5}, T0 + 100),
        ({"ready_at": T0 + 100, "routed_at": T0 + 150}, T0 + 150),
        ({"ready_at": T0 + 100, "routed_at": T0 - 5}, None),
        ({"ready_at": T0 - 100, "routed_at": T0 + 5}, None),
        ({"ready_at": T0 + 100, "routed_at": T0 + 5, "started_at": None}, None),
    ],
    ids=[
        "nothing_reported",
        "warm_but_not_routed",
        "routed_then_warm",
        "warm_then_routed_ready_when_routed",
        "route_from_an_earlier_run",
        "ready_from_an_earlier_run",
        "no_run",
    ],
)
def test_ready_this_run_needs_the_backend_and_the_route_in_this_run(
    fields: dict[str, Any], ready: float | None
) -> None:
    record = HostRecord(**{"host_id": A, "run_open": True, "started_at": T0, **fields})
    assert record.ready_this_run == ready


def test_the_fleet_records_views_of_its_leases() -> None:
    fleet = FleetRecord(
        sessions={
            "ann": {"s2": lease(A, created=NOW - 10), "s1": lease(None, created=NOW - 20)},
            "bob": {"s3": lease(None, created=NOW - 30), "s4": lease(B)},
        }
    )
    assert fleet.open_session_count == 4
    assert fleet.placed_on(A) == {("ann", "s2"): lease(A, created=NOW - 10)}
    assert [(user, sid) for user, sid, _ in fleet.unplaced()] == [("bob", "s3"), ("ann", "s1")]
    assert fleet.sessions_of("cy") == {}


@pytest.mark.parametrize("field", [*Milestone, *BackendField])
def test_every_backend_field_is_a_host_record_field(field: str) -> None:
    assert field in HostRecord.model_fields


@pytest.mark.parametrize("milestone", list(Milestone))
def test_a_milestone_sets_its_field(milestone: Milestone) -> None:
    update = milestone_update(milestone, 12.5)
    assert update.expression == f"SET {milestone.value} = :now"
    assert update.values == {":now": 12.5}


def test_a_session_count_is_not_activity() -> None:
    update = sessions_update(3)
    assert update.expression == "SET connected_sessions = :n"
    assert "generation" not in update.expression


def test_a_heartbeat_is_activity() -> None:
    update = heartbeat_update(12.5, sessions=2)
    assert update.expression == (
        "SET last_inference_at = :now, connected_sessions = :n ADD generation :one"
    )
    assert update.values == {":now": 12.5, ":n": 2, ":one": 1}


def test_the_contract_imports_without_boto3() -> None:
    """The GPU backend imports it at start; keep it free of the AWS SDK."""
    code = (
        "import sys; import lambdas.domain.host_record; "
        "sys.exit(any(m.split('.')[0] in ('boto3', 'botocore') for m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[3]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0
