"""A transition becomes one conditional DynamoDB update, guarded by what was read."""

from __future__ import annotations

import pytest

from lambdas.aws.expressions import conditional_update, lease_update
from lambdas.domain.actions import Transition
from lambdas.domain.host_record import SessionLease
from lambdas.domain.leases import LeaseChange, LeaseGuard


def test_changes_and_expectations_become_set_remove_and_conditions() -> None:
    request = conditional_update(
        Transition(
            "stop",
            expect={"generation": 7, "run_open": True, "error": None},
            changes={"desired": "stopped", "stopped_at": 1.5, "error": None},
        )
    )
    assert request.condition == (
        "attribute_exists(#pk) AND attribute_not_exists(#e0) AND #e1 = :e1 AND #e2 = :e2"
    )
    assert request.update == "SET #c0 = :c0, #c2 = :c2 REMOVE #c1"
    assert request.names == {
        "#pk": "pk",
        "#e0": "error",
        "#e1": "generation",
        "#e2": "run_open",
        "#c0": "desired",
        "#c1": "error",
        "#c2": "stopped_at",
    }
    assert request.values == {
        ":e1": {"N": "7"},
        ":e2": {"BOOL": True},
        ":c0": {"S": "stopped"},
        ":c2": {"N": "1.5"},
    }


def test_maps_and_lists_are_encoded() -> None:
    request = conditional_update(
        Transition("t", expect={}, changes={"sessions": {}, "cold_starts": (1.0, 2.5)})
    )
    assert request.values == {
        ":c0": {"L": [{"N": "1.0"}, {"N": "2.5"}]},
        ":c1": {"M": {}},
    }


def test_a_transition_names_only_host_record_fields() -> None:
    with pytest.raises(ValueError, match="not host record fields"):
        Transition("typo", expect={"generaton": 1}, changes={"desired": "stopped"})


def test_a_transition_must_change_something() -> None:
    with pytest.raises(ValueError, match="must change something"):
        conditional_update(Transition("noop", expect={"generation": 1}, changes={}))


LEASE = SessionLease(created_at=1.5, expires_at=2.5)
LEASE_VALUE = {"M": {"created_at": {"N": "1.5"}, "expires_at": {"N": "2.5"}}}


def test_a_first_lease_creates_the_users_map_if_it_is_absent() -> None:
    request = lease_update(
        LeaseChange(
            "open_session",
            "alice",
            "s-1",
            LeaseGuard.FIRST,
            limit=2,
            lease=LEASE,
            changes={"desired": "running", "error": None},
            bump_generation=True,
        )
    )
    assert request.condition == "attribute_exists(#sessions) AND attribute_not_exists(#sessions.#u)"
    assert request.update == (
        "SET #c0 = :c0, #sessions.#u = :lease, #generation = #generation + :one REMOVE #c1"
    )
    assert request.names == {
        "#sessions": "sessions",
        "#u": "alice",
        "#c0": "desired",
        "#c1": "error",
        "#generation": "generation",
    }
    assert request.values == {
        ":c0": {"S": "running"},
        ":lease": {"M": {"s-1": LEASE_VALUE}},
        ":one": {"N": "1"},
    }


def test_a_further_lease_needs_room_in_the_users_map() -> None:
    request = lease_update(
        LeaseChange("open_session", "alice", "s-2", LeaseGuard.ROOM, limit=2, lease=LEASE)
    )
    assert request.condition == "attribute_exists(#sessions) AND size(#sessions.#u) < :limit"
    assert request.update == "SET #sessions.#u.#s = :lease"
    assert request.names == {"#sessions": "sessions", "#u": "alice", "#s": "s-2"}
    assert request.values == {":limit": {"N": "2"}, ":lease": LEASE_VALUE}


def test_a_release_drops_a_live_lease() -> None:
    request = lease_update(
        LeaseChange(
            "release", "alice", "s-1", LeaseGuard.LIVE, drop=True, changes={"last_release_at": 3}
        )
    )
    assert request.condition == "attribute_exists(#sessions.#u.#s)"
    assert request.update == "SET #c0 = :c0 REMOVE #sessions.#u.#s"
