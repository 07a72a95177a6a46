"""What a start, a keepalive and a release change in the fleet and host records, under which
guards, and how concurrent ones resolve (applied in memory as the store applies them)."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.domain import leases
from lambdas.domain.actions import Transition
from lambdas.domain.host_record import FLEET_KEY, FleetRecord, Lease, SessionItem, host_key
from lambdas.domain.model import Snapshot
from tests.unit.domain.conftest import NOW, A, host, lease, snapshot, try_apply

NEW = {"created_at": NOW, "expires_at": NOW + 28800}
"""The new lease as stored: no host yet (an absent attribute, not null)."""


def item(user: str = "alice", session_id: str = "s-new") -> SessionItem:
    return SessionItem(session_id=session_id, user=user, **NEW)


def fleet(sessions: dict[str, dict[str, Lease]]) -> FleetRecord:
    return FleetRecord(sessions=sessions, error="No capacity")


@pytest.mark.parametrize(
    ("held", "guard"),
    [
        ({"bob": {"s-bob": lease()}}, "first"),
        ({"alice": {"s-1": lease(A)}}, "room"),
        ({"alice": {}}, "room"),
    ],
    ids=["first_start_of_the_user", "a_further_start", "an_emptied_map_is_not_a_first_start"],
)
def test_a_start_adds_a_lease_under_the_per_user_guard(
    held: dict[str, dict[str, Lease]], guard: str
) -> None:
    change = leases.open_lease(fleet(held), item(), limit=2)
    assert change is not None
    (update,) = change.updates
    assert update.key == FLEET_KEY
    assert update.expect == {}
    assert update.add == {}
    if guard == "first":
        assert update.present == (("sessions",),)
        assert update.absent == (("sessions", "alice"),)
        assert update.smaller == ()
        assert update.set == {
            ("sessions", "alice"): {"s-new": NEW},
            ("ended", "alice"): None,
            ("error",): None,
        }
    else:
        assert update.present == ()
        assert update.absent == ()
        assert update.smaller == ((("sessions", "alice"), 2),)
        assert update.set == {
            ("sessions", "alice", "s-new"): NEW,
            ("ended", "alice"): None,
            ("error",): None,
        }


@pytest.mark.parametrize("held", [2, 3])
def test_at_the_limit_there_is_no_start(held: int) -> None:
    mine = {f"s-{n}": lease() for n in range(held)}
    assert leases.open_lease(fleet({"alice": mine}), item(), limit=2) is None


@pytest.mark.parametrize(
    ("held", "limit", "applied"),
    [({}, 1, 1), ({}, 2, 1), ({"s-1": lease()}, 2, 1), ({"s-1": lease()}, 3, 2)],
    ids=["first_limit_1", "first_limit_2", "room_for_one", "room_for_two"],
)
def test_concurrent_starts_of_one_user_never_pass_the_limit(
    held: dict[str, Lease], limit: int, applied: int
) -> None:
    """Given two starts of the same user decided on the same read, when both write, then only
    as many apply as the limit has room for; the others decide again on a fresh read. (A
    user's first starts race for creating the map: one wins.)"""
    read = snapshot(sessions={"alice": held} if held else {})
    current: Snapshot = read
    wins = 0
    for n in range(2):
        change = leases.open_lease(read.fleet, item(session_id=f"s-new{n}"), limit)
        assert change is not None
        after = try_apply(current, change)
        if after is not None:
            current, wins = after, wins + 1
    assert wins == applied
    assert len(current.fleet.sessions_of("alice")) <= limit


def test_starts_of_different_users_never_conflict() -> None:
    read = snapshot(sessions={})
    current: Snapshot = read
    for user in ("ann", "bob", "cy"):
        change = leases.open_lease(read.fleet, item(user=user), limit=1)
        assert change is not None
        after = try_apply(current, change)
        assert after is not None
        current = after
    assert sorted(current.fleet.sessions) == ["ann", "bob", "cy"]


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_the_retries_outlast_the_limit(limit: int) -> None:
    """Every lost race but one can mean another lease of the user: the limit answers first."""
    assert leases.open_attempts(limit) > limit + 1


def test_a_keepalive_is_activity_on_the_sessions_host_while_the_lease_lives() -> None:
    change = leases.keepalive("alice", "s-1", A, NOW)
    check, on_host = change.updates
    assert (check.key, check.present, check.set) == (FLEET_KEY, (("sessions", "alice", "s-1"),), {})
    assert not check.changes_something
    assert on_host.key == host_key(A)
    assert on_host.expect == {"run_open": True}
    assert on_host.set == {("last_keepalive_at",): NOW}
    assert on_host.add == {"generation": 1}


def test_a_release_drops_the_lease_and_is_not_activity() -> None:
    change = leases.release("alice", "s-1", A, NOW)
    drop, on_host = change.updates
    assert drop.present == (("sessions", "alice", "s-1"),)
    assert drop.set == {("sessions", "alice", "s-1"): None}
    assert on_host.set == {("last_release_at",): NOW}
    assert on_host.add == {}


def test_a_release_of_a_waiting_session_touches_no_host() -> None:
    (drop,) = leases.release("alice", "s-1", None, NOW).updates
    assert drop.key == FLEET_KEY


LIVE = {"alice": {"s-1": lease(A)}}


@pytest.mark.parametrize(
    ("change", "sessions", "host_fields", "applies"),
    [
        (leases.keepalive("alice", "s-1", A, NOW), LIVE, {}, True),
        (leases.keepalive("alice", "s-1", A, NOW), {"alice": {}}, {}, False),
        (leases.keepalive("alice", "s-1", A, NOW), LIVE, {"run_open": False}, False),
        (leases.release("alice", "s-1", A, NOW), LIVE, {}, True),
        (leases.release("alice", "s-1", A, NOW), {"alice": {}}, {}, False),
        (leases.release("alice", "s-1", A, NOW), LIVE, {"run_open": False}, True),
    ],
    ids=[
        "keepalive_of_a_live_session",
        "keepalive_after_its_host_left_and_dropped_it",
        "keepalive_on_a_host_whose_run_closed",
        "release_of_a_live_session",
        "release_twice",
        "release_after_the_host_left",
    ],
)
def test_each_is_one_transaction(
    change: Transition,
    sessions: dict[str, dict[str, Lease]],
    host_fields: dict[str, Any],
    applies: bool,
) -> None:
    """All of its updates or none: a keepalive of a session that ended bumps no host."""
    before = snapshot(host(A, **host_fields), sessions=sessions)
    after = try_apply(before, change)
    assert (after is not None) is applies
