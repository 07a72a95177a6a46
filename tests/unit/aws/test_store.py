"""`ControlStore` against moto's DynamoDB: records created once, transitions applied as one
conditional update or one transaction, and a lost guard reported, not raised. The decisions of
whole fleet scenes are applied to DynamoDB and to the in-memory store the decide tests use:
both must end with the same records (so those tests' application is DynamoDB's)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.aws.codec import encode_item
from lambdas.aws.store import ControlStore, create_table
from lambdas.domain import leases
from lambdas.domain.actions import Transition, Update
from lambdas.domain.decide import decide
from lambdas.domain.host_record import (
    FLEET_KEY,
    PARTITION_KEY,
    FleetRecord,
    HostRecord,
    SessionItem,
    host_key,
)
from lambdas.domain.model import Snapshot
from tests.unit.domain.conftest import (
    NOW,
    A,
    B,
    apply_actions,
    host,
    instance,
    make_settings,
    sessions,
    snapshot,
)

TABLE = "spinup-test"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlStore]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        yield ControlStore(client, TABLE)


def seed(store: ControlStore, given: Snapshot) -> None:
    records: dict[str, dict[str, Any]] = {FLEET_KEY: given.fleet.model_dump(exclude_none=True)}
    for host_id, record in given.hosts.items():
        records[host_key(host_id)] = record.model_dump(exclude_none=True, exclude={"host_id"})
    for key, fields in records.items():
        store.client.put_item(TableName=TABLE, Item=encode_item({PARTITION_KEY: key, **fields}))
    for serving in given.group.serving:  # as `read_snapshot` does before deciding
        store.ensure_host(serving.instance_id)


def test_the_fleet_record_is_created_on_first_use(store: ControlStore) -> None:
    assert store.load_fleet() == FleetRecord()
    assert store.load_fleet() == FleetRecord()


def test_a_host_record_is_created_once(store: ControlStore) -> None:
    store.ensure_host(A)
    assert store.apply(Transition("t", (Update(host_key(A), add={"generation": 1}),)))
    store.ensure_host(A)
    assert store.load_host(A) == HostRecord(host_id=A, generation=1)
    assert store.load_hosts([A, B, A]) == {A: HostRecord(host_id=A, generation=1)}
    assert store.load_host(B) is None


@pytest.mark.parametrize("records", [1, 2], ids=["one_update", "a_transaction"])
def test_a_lost_guard_is_reported_and_nothing_is_written(records: int, store: ControlStore) -> None:
    store.load_fleet()
    store.ensure_host(A)
    stale = Update(FLEET_KEY, expect={"version": 5}, set={("desired_capacity",): 3})
    fresh = Update(host_key(A), set={("message",): "changed"})
    transition = Transition("t", (stale, fresh)[:records])
    assert not store.apply(transition)
    assert store.load_fleet().desired_capacity == 0
    assert store.load_host(A) == HostRecord(host_id=A)


def test_an_update_never_creates_a_record(store: ControlStore) -> None:
    assert not store.apply(Transition("t", (Update(host_key(A), set={("message",): "x"}),)))
    assert store.load_host(A) is None


def item(user: str, sid: str) -> SessionItem:
    return SessionItem(session_id=sid, user=user, created_at=NOW, expires_at=NOW + 3600)


def test_the_per_user_limit_holds_in_dynamodb(store: ControlStore) -> None:
    """The guards as DynamoDB evaluates them: a user's first lease creates the map once; a
    further lease needs room in it."""
    read = store.load_fleet()
    first = leases.open_lease(read, item("ann", "s1"), limit=2)
    racing_first = leases.open_lease(read, item("ann", "s2"), limit=2)
    assert first is not None
    assert racing_first is not None
    assert store.apply(first)
    assert not store.apply(racing_first)
    again = leases.open_lease(store.load_fleet(), item("ann", "s2"), limit=2)
    racing = leases.open_lease(store.load_fleet(), item("ann", "s3"), limit=2)
    assert again is not None
    assert racing is not None
    assert store.apply(again)
    assert not store.apply(racing)
    assert sorted(store.load_fleet().sessions_of("ann")) == ["s1", "s2"]


def test_a_keepalive_of_an_ended_session_bumps_no_host(store: ControlStore) -> None:
    store.load_fleet()
    store.ensure_host(A)
    assert not store.apply(leases.keepalive("ann", "s1", A, NOW))
    assert store.load_host(A) == HostRecord(host_id=A)


IDLE: dict[str, Any] = {"started": NOW - 1000, "ready": NOW - 900}
BUSY: dict[str, Any] = {"last_inference_at": NOW, "connected_sessions": 1}
SCENES: dict[str, Snapshot] = {
    "two_leaves_drop_sessions_close_runs_and_count_the_budget": snapshot(
        host(A, **IDLE),
        host(B, **IDLE),
        sessions=sessions(("ann", "s1", A), ("bob", "s2", B), ("bob", "s3", B)),
        budget_day="2027-01-15",
        budget_used_s=120.5,
    ),
    "a_run_opens_and_sessions_are_placed_and_a_host_asked_for": snapshot(
        host(A, **BUSY),
        instances=[instance(A), instance(B, "Pending", ec2="pending")],
        sessions=sessions(("ann", "s1", None), ("bob", "s2", None), ("cy", "s3", None)),
        max_size=3,
    ),
    "a_cold_start_and_a_replacement": snapshot(
        host(A, cold_start_seq=0, **BUSY),
        host(B, "models_loaded", started=NOW - 400),
        sessions=sessions(("ann", "s1", B)),
        cold_starts=(120.0, 95.5),
    ),
}


@pytest.mark.parametrize("scene", list(SCENES))
def test_decisions_apply_in_dynamodb_as_in_memory(scene: str, store: ControlStore) -> None:
    given = SCENES[scene]
    seed(store, given)
    actions = decide(given, make_settings(), NOW)
    transitions = [a for a in actions if isinstance(a, Transition)]
    assert transitions
    assert [store.apply(t) for t in transitions] == [True] * len(transitions)
    expected = apply_actions(given, actions, with_calls=False)
    assert store.load_fleet() == expected.fleet
    assert store.load_hosts(expected.hosts) == expected.hosts
