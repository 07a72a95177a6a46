"""`decide` places waiting sessions over the fleet: a ready host with room first (fullest
first), then a starting host, then new capacity — exactly the hosts needed, capped at the
group's maximum, counting the hosts already on their way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdas.domain.actions import SetDesired
from lambdas.domain.decide import decide
from lambdas.domain.fleet import GroupInstance
from lambdas.domain.host_record import HostRecord
from lambdas.settings import Settings
from tests.unit.domain.conftest import (
    NOW,
    PER_HOST,
    TODAY,
    A,
    B,
    calls,
    fleet_update,
    host,
    host_update,
    instance,
    lease,
    names,
    only,
    sessions,
    snapshot,
    warm,
)

BUSY: dict[str, Any] = {"last_inference_at": NOW - 5, "connected_sessions": 1}
"""Activity that keeps a ready host from leaving in these cases."""


@dataclass
class Scene:
    hosts: list[HostRecord]
    waiting: int
    """Sessions waiting for a host (user0/s0, user1/s1, ... oldest first)."""
    placed: dict[str, int] = field(default_factory=dict)
    """Sessions already on each host."""
    instances: list[GroupInstance] | None = None
    max_size: int = 2
    fleet: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> Any:
        placements = [
            (f"held{h}{n}", f"h-{h}-{n}", h) for h, k in self.placed.items() for n in range(k)
        ]
        waiting = [(f"user{n}", f"s{n}", None) for n in range(self.waiting)]
        return snapshot(
            *self.hosts,
            instances=self.instances,
            max_size=self.max_size,
            sessions=sessions(*placements, *waiting),
            **self.fleet,
        )


def ready(host_id: str) -> HostRecord:
    return host(host_id, **BUSY)


def starting(host_id: str) -> HostRecord:
    return host(host_id, "backend_up", started=NOW - 40)


# case → (scene, expected placement (session → host), expected desired capacity or None)
CASES: dict[str, tuple[Scene, dict[str, str], int | None]] = {
    "given_no_host_when_a_user_starts_then_one_host_is_asked_for": (
        Scene([], waiting=1),
        {},
        1,
    ),
    "given_no_host_when_more_users_start_than_one_host_takes_then_two": (
        Scene([], waiting=PER_HOST + 1),
        {},
        2,
    ),
    "given_a_ready_host_with_room_then_the_session_goes_there": (
        Scene([ready(A)], waiting=1, placed={A: 1}),
        {"s0": A},
        None,
    ),
    "given_two_ready_hosts_then_the_fullest_with_room_first": (
        Scene([ready(A), ready(B)], waiting=1, placed={B: 1}),
        {"s0": B},
        None,
    ),
    "given_a_ready_and_a_starting_host_then_the_ready_one_first": (
        Scene([starting(A), ready(B)], waiting=1, placed={B: 1}),
        {"s0": B},
        None,
    ),
    "given_the_ready_hosts_full_then_a_starting_host_takes_it": (
        Scene([ready(A), starting(B)], waiting=2, placed={A: PER_HOST}),
        {"s0": B, "s1": B},
        None,
    ),
    "given_every_host_full_then_scale_out_by_one": (
        Scene([ready(A)], waiting=1, placed={A: PER_HOST}, max_size=3),
        {},
        2,
    ),
    "given_every_host_full_then_scale_out_by_exactly_the_hosts_needed": (
        Scene([ready(A)], waiting=PER_HOST + 1, placed={A: PER_HOST}, max_size=4),
        {},
        3,
    ),
    "given_room_for_some_then_place_them_and_scale_out_for_the_rest": (
        Scene([ready(A)], waiting=2, placed={A: 1}, max_size=2),
        {"s0": A},
        2,
    ),
    "given_the_scale_out_would_pass_the_maximum_then_it_stops_at_the_maximum": (
        Scene([ready(A)], waiting=3 * PER_HOST, placed={A: PER_HOST}, max_size=2),
        {},
        2,
    ),
    "given_every_host_full_at_the_maximum_then_they_wait": (
        Scene([ready(A), ready(B)], waiting=1, placed={A: PER_HOST, B: PER_HOST}),
        {},
        None,
    ),
    "given_a_host_on_its_way_then_it_counts_and_nothing_more_is_asked_for": (
        Scene(
            [ready(A)],
            waiting=PER_HOST,
            placed={A: PER_HOST},
            max_size=3,
            fleet={"desired_capacity": 2},
        ),
        {},
        None,
    ),
    "given_a_host_on_its_way_then_only_the_hosts_beyond_it_are_asked_for": (
        Scene(
            [ready(A)],
            waiting=PER_HOST + 1,
            placed={A: PER_HOST},
            max_size=3,
            fleet={"desired_capacity": 2},
        ),
        {},
        3,
    ),
    "given_a_host_still_leaving_then_it_takes_no_session_and_the_scale_out_waits": (
        Scene(
            [host(A, stop_pending=True, run_open=False, stopped_at=NOW - 5), ready(B)],
            waiting=1,
            placed={B: PER_HOST},
            instances=[instance(A, protected=False), instance(B)],
            max_size=3,
            fleet={"runs": {B: NOW - 1000}, "desired_capacity": 1},
        ),
        {},
        None,
    ),
    "given_the_leaving_host_is_back_in_the_warm_pool_then_scale_out": (
        Scene(
            [host(A, stop_pending=True, run_open=False, stopped_at=NOW - 5), ready(B)],
            waiting=1,
            placed={B: PER_HOST},
            instances=[warm(A), instance(B)],
            max_size=3,
            fleet={"runs": {B: NOW - 1000}, "desired_capacity": 1},
        ),
        {},
        2,
    ),
    "given_an_instance_whose_run_opens_now_then_it_counts_as_on_its_way": (
        Scene(
            [host(A, "fresh")],
            waiting=1,
            instances=[instance(A, "Pending", ec2="pending")],
            fleet={"desired_capacity": 1},
        ),
        {},
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_placement_and_scale_out(case: str, settings: Settings) -> None:
    scene, expected, capacity = CASES[case]
    actions = decide(scene.snapshot(), settings, NOW)
    placed = {}
    for action in actions:
        if action.name == "place":
            placed = {
                path[2]: value
                for path, value in fleet_update(action).set.items()  # type: ignore[arg-type]
                if path[0] == "sessions"
            }
    assert placed == expected
    desired = [c.capacity for c in calls(actions) if isinstance(c, SetDesired)]
    assert desired == ([] if capacity is None else [capacity])


def test_a_scale_out_is_one_conditional_write_of_the_fleet_record(settings: Settings) -> None:
    """Given many reconciles deciding on the same fleet record, when each raises the desired
    capacity, then only the one whose version still matches is applied."""
    actions = decide(Scene([], waiting=3).snapshot(), settings, NOW)
    assert names(actions) == ["place"]
    change = fleet_update(only(actions, "place"))
    assert change.expect == {"version": 10}
    assert change.set[("version",)] == 11
    assert change.set[("desired_capacity",)] == 2
    assert change.set[("scaled_out_at",)] == NOW
    assert change.set[("message",)] == ""
    assert only(actions, "place").then == (SetDesired(2),)


def test_a_placement_is_activity_on_the_host_and_guarded_by_the_lease(settings: Settings) -> None:
    """The session's lease must still be there (not released meanwhile); the host's run must
    be the one decided on; its generation moves, so a stop decided before loses."""
    scene = Scene([ready(A)], waiting=2, placed={A: 0}, max_size=1)
    scene.hosts = [host(A, run_seq=4, generation=7, **BUSY)]
    place = only(decide(scene.snapshot(), settings, NOW), "place")
    assert fleet_update(place).present == (("sessions", "user0", "s0"), ("sessions", "user1", "s1"))
    on_host = host_update(place, A)
    assert on_host.expect == {"run_seq": 4, "run_open": True}
    assert on_host.add == {"generation": 1}
    assert on_host.set == {("last_start_request_at",): NOW}


def test_an_expired_waiting_lease_ends_and_is_not_placed(settings: Settings) -> None:
    """A session that waited until its lease ran out ends (it would count against its user's
    limit for ever), and its user is told why; nothing starts for it."""
    held = {"ann": {"s-old": lease(created=NOW - 7200, expires=NOW - 1)}, "bob": {}}
    actions = decide(snapshot(sessions=held), settings, NOW)
    assert names(actions) == ["expire_waiting"]
    change = fleet_update(only(actions, "expire_waiting"))
    assert change.set[("sessions", "ann", "s-old")] is None
    assert "expired" in str(change.set[("ended", "ann")])
    assert ("ended", "bob") not in change.set


def test_once_the_budget_is_used_up_waiting_sessions_end_with_the_reason(
    settings: Settings,
) -> None:
    """No host starts over budget (a start request is refused then too): the sessions that
    waited end, and the status says why."""
    held = sessions(("ann", "s1", None), ("bob", "s2", None), ("cy", "s3", B))
    busy = host(B, **BUSY)
    spent: dict[str, Any] = {"budget_day": TODAY, "budget_used_s": settings.daily_budget_s}
    actions = decide(snapshot(busy, sessions=held, **spent), settings, NOW)
    cancel = only(actions, "cancel_waiting")
    change = fleet_update(cancel)
    assert change.set[("sessions", "ann", "s1")] is None
    assert change.set[("sessions", "bob", "s2")] is None
    assert ("sessions", "cy", "s3") not in change.set
    assert "daily GPU budget" in str(change.set[("error",)])
    assert cancel.then == ()
    assert "place" not in names(actions)


def test_a_booting_host_past_its_grace_leaves_rather_than_being_replaced_over_budget(
    settings: Settings,
) -> None:
    """A replacement would start another host on a budget that is used up."""
    booting = host(A, "models_loaded", started=NOW - 400)
    spent: dict[str, Any] = {"budget_day": TODAY, "budget_used_s": settings.daily_budget_s - 400}
    actions = decide(snapshot(booting, **spent), settings, NOW + 1)
    assert "replace" not in names(actions)
    leave = only(actions, "leave")
    assert host_update(leave, A).set[("stop_reason",)] == "budget"
    assert fleet_update(leave).set.get(("error",)) is None
