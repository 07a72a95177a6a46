"""What a start, a keepalive and a release change in the host record, and under which guard."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lambdas.domain import leases
from lambdas.domain.host_record import HostRecord, SessionItem, SessionLease
from lambdas.domain.leases import LeaseChange, LeaseGuard

HostFactory = Callable[..., HostRecord]
NOW = 1_800_000_000.0
LEASE = SessionLease(created_at=NOW - 60, expires_at=NOW + 3600)


def item(user: str = "alice", session_id: str = "s-new") -> SessionItem:
    return SessionItem(session_id=session_id, user=user, created_at=NOW, expires_at=NOW + 28800)


def test_a_users_first_start_creates_their_lease_map(make_host: HostFactory) -> None:
    change = leases.open_lease(make_host(sessions={"bob": {"s-bob": LEASE}}), item(), limit=2)
    assert change is not None
    assert change.guard is LeaseGuard.FIRST
    assert change.lease == SessionLease(created_at=NOW, expires_at=NOW + 28800)


def test_a_further_start_needs_room_under_the_limit(make_host: HostFactory) -> None:
    change = leases.open_lease(make_host(sessions={"alice": {"s-1": LEASE}}), item(), limit=2)
    assert change is not None
    assert (change.guard, change.limit) == (LeaseGuard.ROOM, 2)


def test_an_emptied_map_is_not_a_first_start(make_host: HostFactory) -> None:
    """A released lease leaves the user's map; it exists, so the write needs room in it."""
    change = leases.open_lease(make_host(sessions={"alice": {}}), item(), limit=2)
    assert change is not None
    assert change.guard is LeaseGuard.ROOM


@pytest.mark.parametrize("held", [2, 3])
def test_at_the_limit_there_is_no_start(make_host: HostFactory, held: int) -> None:
    mine = {f"s-{n}": LEASE for n in range(held)}
    assert leases.open_lease(make_host(sessions={"alice": mine}), item(), limit=2) is None


def test_a_start_wants_the_instance_running_and_is_activity(make_host: HostFactory) -> None:
    host = make_host(desired="stopped", message="Stopped: idle", error="no capacity")
    change = leases.open_lease(host, item(), limit=2)
    assert change is not None
    assert change.changes == {
        "desired": "running",
        "last_start_request_at": NOW,
        "message": "",
        "error": None,
    }
    assert change.bump_generation


def test_a_keepalive_is_activity_on_a_live_session() -> None:
    change = leases.keepalive("alice", "s-1", NOW)
    assert change.guard is LeaseGuard.LIVE
    assert change.changes == {"last_keepalive_at": NOW}
    assert change.bump_generation
    assert change.lease is None
    assert not change.drop


def test_a_release_drops_the_lease_and_is_not_activity() -> None:
    change = leases.release("alice", "s-1", NOW)
    assert change.guard is LeaseGuard.LIVE
    assert change.drop
    assert change.changes == {"last_release_at": NOW}
    assert not change.bump_generation


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_the_retries_outlast_the_limit(limit: int) -> None:
    """Every lost race but one can mean another lease of the user: the limit answers first."""
    assert leases.open_attempts(limit) > limit + 1


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"guard": LeaseGuard.LIVE, "changes": {"desird": "running"}}, "not host record fields"),
        ({"guard": LeaseGuard.ROOM, "lease": LEASE}, "needs a limit"),
        ({"guard": LeaseGuard.FIRST}, "creates the user's map"),
        ({"guard": LeaseGuard.FIRST, "lease": LEASE, "drop": True}, "creates the user's map"),
    ],
)
def test_a_malformed_change_is_refused(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        LeaseChange(name="t", user="alice", session_id="s-1", **kwargs)  # type: ignore[arg-type]
