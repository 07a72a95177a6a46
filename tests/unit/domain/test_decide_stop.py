"""`decide` stops hosts one by one: exactly when the stop rules say, through the stop lock,
returning exactly the idle host to the warm pool; a host never ready is replaced, then given up
on."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.domain.actions import Action, DeleteRoute, Protect, Replace, SetDesired
from lambdas.domain.decide import decide
from lambdas.domain.host_record import FLEET_KEY
from lambdas.domain.model import Snapshot
from lambdas.domain.stop_rules import StopReason
from lambdas.settings import Settings
from tests.unit.domain.conftest import (
    BOOT_GRACE_S,
    IDLE_S,
    MAX_REPLACEMENTS,
    TODAY,
    A,
    B,
    C,
    calls,
    fleet_update,
    host,
    host_update,
    instance,
    names,
    only,
    sessions,
    snapshot,
    transitions,
)
from tests.unit.domain.test_stop_rules import CASES, READY, T0, Case

IDLE_AT = READY + IDLE_S
"""When a ready host that nobody used leaves."""


def case_snapshot(given: Case, settings: Settings) -> Snapshot:
    """Host A as in the stop-rules case, with `placed` sessions on it and the fleet's budget
    running out at `budget_at` (A being the one open run)."""
    placed = sessions(*((f"user{n}", f"s{n}", A) for n in range(given.placed)))
    budget: dict[str, Any] = {}
    if given.budget_at is not None:
        used = settings.daily_budget_s - (given.budget_at - T0)
        budget = {"budget_day": TODAY, "budget_used_s": used}
    return snapshot(given.host(), sessions=placed, **budget)


def stops_of(actions: list[Action]) -> list[tuple[str, object]]:
    """(transition, stop reason) of every leave and replacement decided."""
    return [
        (t.name, host_update(t, A).set[("stop_reason",)])
        for t in transitions(actions)
        if t.name in ("leave", "replace")
    ]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(
    ("offset_s", "stops"), [(-1.0, False), (0.0, True), (30.0, True)], ids=["before", "at", "after"]
)
def test_decide_stops_a_host_exactly_when_planned(
    case: str, offset_s: float, stops: bool, settings: Settings
) -> None:
    """Given a serving host, when the clock reaches its planned stop, then decide stops it for
    that reason (a host never ready is replaced), and never a second earlier."""
    given = CASES[case]
    actions = decide(case_snapshot(given, settings), settings, given.at + offset_s)
    how = "replace" if given.reason is StopReason.BOOT_TIMEOUT else "leave"
    assert stops_of(actions) == ([(how, given.reason.value)] if stops else [])


def test_the_leave_is_locked_on_the_hosts_generation_and_the_fleets_version(
    settings: Settings,
) -> None:
    """Given an idle host, when it leaves, then the write expects the generation it was decided
    on (a placement, keepalive or heartbeat since wins) and the fleet's version (a concurrent
    fleet change wins), and closes the run, drops its sessions and lowers the capacity by one."""
    idle = host(A, started=T0, ready=READY, generation=41)
    busy = host(B, started=T0, ready=READY, last_inference_at=IDLE_AT, connected_sessions=1)
    held = sessions(("ann", "s-ann", A), ("bob", "s-bob", B))
    leave = only(decide(snapshot(idle, busy, sessions=held), settings, IDLE_AT), "leave")

    host_change = host_update(leave, A)
    assert host_change.expect == {"generation": 41, "run_seq": 1, "run_open": True}
    assert host_change.set[("run_open",)] is False
    assert host_change.set[("stop_pending",)] is True
    assert host_change.set[("stopped_at",)] == IDLE_AT
    assert host_change.set[("stop_reason",)] == "idle_disconnected"

    fleet_change = fleet_update(leave)
    assert fleet_change.expect == {"version": 10}
    assert fleet_change.set[("version",)] == 11
    assert fleet_change.set[("desired_capacity",)] == 1
    assert fleet_change.set[("runs", A)] is None
    assert fleet_change.set[("sessions", "ann", "s-ann")] is None
    assert ("sessions", "bob", "s-bob") not in fleet_change.set
    assert str(fleet_change.set[("ended", "ann")]).startswith("It was idle")
    assert ("ended", "bob") not in fleet_change.set
    assert fleet_change.set[("budget_used_s",)] == IDLE_AT - T0
    assert [u.key for u in leave.updates] == [FLEET_KEY, f"host#{A}"]


@pytest.mark.parametrize(
    ("b_protected", "expected_calls"),
    [
        (True, [DeleteRoute(A), Protect(A, protected=False), SetDesired(1)]),
        (
            False,
            [
                DeleteRoute(A),
                Protect(B, protected=True),
                Protect(A, protected=False),
                SetDesired(1),
            ],
        ),
    ],
    ids=["others_protected", "an_unprotected_other_is_protected_first"],
)
def test_a_leave_unprotects_exactly_the_leaving_host_then_lowers_the_capacity(
    b_protected: bool, expected_calls: list[object], settings: Settings
) -> None:
    """The group scales in an unprotected instance: this host must be the only one."""
    idle = host(A, started=T0, ready=READY)
    busy = host(B, started=T0, ready=READY, last_inference_at=IDLE_AT, connected_sessions=1)
    group = [instance(A), instance(B, protected=b_protected)]
    actions = decide(snapshot(idle, busy, instances=group), settings, IDLE_AT)
    assert list(only(actions, "leave").then) == expected_calls
    unprotected = [c for c in calls(actions) if isinstance(c, Protect) and not c.protected]
    assert unprotected == [Protect(A, protected=False)]


def test_a_starting_host_that_holds_sessions_is_never_the_one_chosen(settings: Settings) -> None:
    """Given an idle ready host A and a host B still starting (just launched, not yet
    protected) that holds sessions, when A leaves, then B is protected before A is
    unprotected, and B stays however long it has been idle."""
    idle = host(A, started=T0, ready=READY)
    starting = host(B, "started", started=IDLE_AT - 10)
    group = [instance(A), instance(B, "Pending", ec2="pending", protected=False)]
    held = sessions(("ann", "s1", B), ("bob", "s2", B))
    actions = decide(snapshot(idle, starting, instances=group, sessions=held), settings, IDLE_AT)
    assert [t.name for t in transitions(actions) if t.name in ("leave", "replace")] == ["leave"]
    then = list(only(actions, "leave").then)
    assert then.index(Protect(B, protected=True)) < then.index(Protect(A, protected=False))
    assert Protect(B, protected=False) not in calls(actions)
    assert host_update(only(actions, "leave"), A).key == f"host#{A}"


def test_two_leaves_in_one_decide_chain_the_fleets_version(settings: Settings) -> None:
    """Given two idle hosts, then two leaves: the second expects the version the first
    writes, and lowers the capacity the first lowered."""
    first, second = host(A, started=T0, ready=READY), host(B, started=T0, ready=READY)
    actions = decide(snapshot(first, second), settings, IDLE_AT)
    leaves = transitions(actions, "leave")
    assert [fleet_update(t).expect["version"] for t in leaves] == [10, 11]
    assert [fleet_update(t).set[("version",)] for t in leaves] == [11, 12]
    assert [fleet_update(t).set[("desired_capacity",)] for t in leaves] == [1, 0]
    assert [c for c in calls(actions) if isinstance(c, SetDesired)] == [
        SetDesired(1),
        SetDesired(0),
    ]
    assert Protect(A, protected=True) not in calls(actions)


def test_a_host_never_ready_is_replaced_and_its_sessions_wait(settings: Settings) -> None:
    """Given a host not ready at the end of the boot grace, then the group replaces it (the
    desired capacity stays), its sessions are unplaced for the replacement, and the
    replacement is counted."""
    stuck = host(A, "models_loaded", started=T0, generation=3)
    held = sessions(("ann", "s1", A), ("bob", "s2", A))
    actions = decide(snapshot(stuck, sessions=held), settings, T0 + BOOT_GRACE_S)
    assert names(actions) == ["replace"]
    replace = only(actions, "replace")
    assert replace.then == (DeleteRoute(A), Replace(A))
    assert host_update(replace, A).expect == {"generation": 3, "run_seq": 1, "run_open": True}
    assert host_update(replace, A).set[("run_open",)] is False
    assert ("stop_pending",) not in host_update(replace, A).set
    change = fleet_update(replace)
    assert change.set[("sessions", "ann", "s1", "host_id")] is None
    assert change.set[("sessions", "bob", "s2", "host_id")] is None
    assert change.set[("replacements",)] == 1
    assert change.set[("runs", A)] is None
    assert ("desired_capacity",) not in change.set


def test_the_sessions_of_a_replaced_host_go_to_a_ready_host_with_room(settings: Settings) -> None:
    stuck = host(A, "backend_up", started=T0)
    ready = host(B, started=T0 - 2000, ready=T0 - 1900, last_start_request_at=T0 + BOOT_GRACE_S)
    held = sessions(("ann", "s1", A))
    actions = decide(snapshot(stuck, ready, sessions=held), settings, T0 + BOOT_GRACE_S)
    assert names(actions) == ["replace", "place"]
    assert fleet_update(only(actions, "place")).set[("sessions", "ann", "s1", "host_id")] == B


def test_after_max_replacements_the_host_leaves_with_an_error(settings: Settings) -> None:
    """Never an endless replace loop: the fleet says an operator should look."""
    stuck = host(A, "routed", started=T0)
    held = sessions(("ann", "s1", A))
    now = T0 + BOOT_GRACE_S
    actions = decide(snapshot(stuck, sessions=held, replacements=MAX_REPLACEMENTS), settings, now)
    assert names(actions) == ["leave"]
    leave = only(actions, "leave")
    error = fleet_update(leave).set[("error",)]
    assert isinstance(error, str)
    assert f"{MAX_REPLACEMENTS + 1} GPU hosts in a row were not ready" in error
    assert fleet_update(leave).set[("message",)] == error
    assert host_update(leave, A).set[("error",)] == error
    assert fleet_update(leave).set[("sessions", "ann", "s1")] is None
    assert leave.then[-1] == SetDesired(0)


def test_a_ready_host_that_stays_busy_is_not_touched(settings: Settings) -> None:
    busy = host(A, started=T0, ready=READY, last_inference_at=T0 + 1000, connected_sessions=1)
    held = sessions(("ann", "s1", A))
    assert decide(snapshot(busy, sessions=held), settings, T0 + 1000 + 30) == []


def test_a_leave_never_lowers_the_capacity_below_zero(settings: Settings) -> None:
    """A fleet record that lost count (desired 0 while a host runs) still leaves cleanly."""
    idle = host(A, started=T0, ready=READY)
    leave = only(decide(snapshot(idle, desired_capacity=0), settings, IDLE_AT), "leave")
    assert fleet_update(leave).set[("desired_capacity",)] == 0


@pytest.mark.parametrize(
    ("placed_on_a", "leaves"),
    [(0, False), (1, False), (2, True)],
    ids=["room_for_it", "room_for_one_more", "full"],
)
def test_a_session_waiting_for_a_host_keeps_an_idle_host_with_room(
    placed_on_a: int, leaves: bool, settings: Settings
) -> None:
    """Given a ready host whose idle stop is due, when a session waits for a host, then it is
    placed there instead (a start request is activity, as today), unless the host is full."""
    idle = host(A, started=T0, ready=READY)
    held = sessions(*((f"u{n}", f"s{n}", A) for n in range(placed_on_a)), ("new", "s-new", None))
    actions = decide(snapshot(idle, sessions=held, max_size=1), settings, IDLE_AT + 30)
    assert ("leave" in names(actions)) is leaves
    if not leaves:
        place = only(actions, "place")
        assert fleet_update(place).set[("sessions", "new", "s-new", "host_id")] == A
        assert host_update(place, A).set[("last_start_request_at",)] == IDLE_AT + 30


@pytest.mark.parametrize("other", [A, C], ids=["decided_before", "decided_after"])
def test_a_leave_never_protects_a_host_that_is_already_leaving(
    other: str, settings: Settings
) -> None:
    """Given a host still on its way out (unprotected), when another host leaves, then the
    first is not protected again, whichever order decide visits them in."""
    idle_id = B
    idle = host(idle_id, started=T0, ready=READY)
    leaving = host(other, run_open=False, stop_pending=True, stopped_at=IDLE_AT - 20)
    group = [instance(idle_id), instance(other, protected=False)]
    actions = decide(
        snapshot(idle, leaving, instances=group, runs={idle_id: T0}, desired_capacity=1),
        settings,
        IDLE_AT,
    )
    assert Protect(other, protected=True) not in calls(actions)
    assert only(actions, "leave").then[-1] == SetDesired(0)
