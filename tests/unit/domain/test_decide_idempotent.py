"""`decide` is idempotent and safe to run from many processes at once.

Every scene of the other decide tables is decided, its transitions applied in memory as the
store applies them (each guard checked: decide chains its own writes, so all must hold) and its
calls made as Auto Scaling and the route table answer them; deciding again never repeats a
transition, and the fleet settles within a few rounds. Two processes deciding on the same read
make each change once: the second one's writes lose their guards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lambdas.domain.actions import Action, SetDesired, Transition
from lambdas.domain.decide import decide
from lambdas.domain.model import Snapshot
from lambdas.settings import Settings
from tests.unit.domain import test_decide_lifecycle, test_decide_placement, test_stop_rules
from tests.unit.domain.conftest import (
    NOW,
    A,
    B,
    apply_actions,
    calls,
    host,
    instance,
    sessions,
    snapshot,
    try_apply,
)
from tests.unit.domain.test_decide_stop import case_snapshot

Scene = Callable[[Settings], tuple[Snapshot, float]]
ROUNDS = 4
"""Decisions until the fleet settles: e.g. open the run, route it, record it routed."""


def _at_now(given: Snapshot) -> Scene:
    return lambda _: (given, NOW)


def _stop_case(case: test_stop_rules.Case) -> Scene:
    return lambda settings: (case_snapshot(case, settings), case.at)


def _scenes() -> dict[str, Scene]:
    scenes: dict[str, Scene] = {}
    for name, (given, _) in test_decide_lifecycle.CASES.items():
        scenes[f"lifecycle-{name}"] = _at_now(given)
    for name, (scene, _, _) in test_decide_placement.CASES.items():
        scenes[f"placement-{name}"] = _at_now(scene.snapshot())
    for name, case in test_stop_rules.CASES.items():
        scenes[f"stop-{name}"] = _stop_case(case)
    for name, given in BUSY_SCENES.items():
        scenes[f"busy-{name}"] = _at_now(given)
    return scenes


IDLE: dict[str, Any] = {"started": NOW - 1000, "ready": NOW - 900}
BUSY_SCENES: dict[str, Snapshot] = {
    "two_leaves": snapshot(host(A, **IDLE), host(B, **IDLE)),
    "a_cold_start_then_a_leave": snapshot(host(A, cold_start_seq=0, **IDLE)),
    "a_replacement_then_a_placement_elsewhere": snapshot(
        host(A, "models_loaded", started=NOW - 400),
        host(B, **IDLE, last_inference_at=NOW, connected_sessions=1),
        sessions=sessions(("ann", "s1", A)),
    ),
    "a_run_opens_a_host_leaves_and_sessions_wait": snapshot(
        host(A, **IDLE),
        instances=[instance(A), instance(B, "Pending", ec2="pending", protected=False)],
        desired_capacity=2,
        sessions=sessions(("ann", "s1", None), ("bob", "s2", None), ("cy", "s3", None)),
        max_size=3,
    ),
    "a_run_ends_outside_and_its_sessions_move_to_another_host": snapshot(
        host(A, last_inference_at=NOW, connected_sessions=1),
        host(B, last_inference_at=NOW, connected_sessions=1),
        instances=[instance(B)],
        sessions=sessions(("ann", "s1", A)),
    ),
}


SCENES = _scenes()


def signature(action: Action) -> tuple[str, tuple[str, ...]]:
    keys = tuple(u.key for u in action.updates) if isinstance(action, Transition) else ()
    return action.name, keys


@pytest.mark.parametrize("scene", list(SCENES))
def test_deciding_again_on_the_result_repeats_nothing(scene: str, settings: Settings) -> None:
    """Given a scene, when its decisions are applied and decide runs again, then no
    transition of an earlier round is decided again, and within a few rounds nothing is left
    to do."""
    current, now = SCENES[scene](settings)
    made: set[tuple[str, tuple[str, ...]]] = set()
    for _ in range(ROUNDS):
        actions = decide(current, settings, now)
        if not actions:
            return
        repeated = {signature(a) for a in actions if isinstance(a, Transition)} & made
        assert not repeated, f"decided again: {sorted(repeated)}"
        made |= {signature(a) for a in actions if isinstance(a, Transition)}
        current = apply_actions(current, actions, with_calls=True)
    pytest.fail(f"still deciding after {ROUNDS} rounds: {[a.name for a in actions]}")


@pytest.mark.parametrize("processes", [2, 50])
def test_concurrent_starts_change_the_capacity_once(processes: int, settings: Settings) -> None:
    """Given many reconciles reading the same fleet (users starting at once, no host yet),
    when each decides and writes, then one scale-out is applied and the others' writes lose
    their guard: the capacity changes once, by the hosts needed."""
    waiting = sessions(*((f"user{n}", f"s{n}", None) for n in range(3)))
    read = snapshot(sessions=waiting, max_size=4)
    decisions = [decide(read, settings, NOW + n / 100) for n in range(processes)]
    current, applied_calls = read, []
    for actions in decisions:
        for action in actions:
            assert isinstance(action, Transition)
            after = try_apply(current, action)
            if after is not None:
                current = after
                applied_calls += list(action.then)
    assert applied_calls == [SetDesired(2)]
    assert current.fleet.desired_capacity == 2


def test_a_placement_and_a_leave_decided_at_once_cannot_both_apply(settings: Settings) -> None:
    """Given one reconcile that places a session on host A and another that decided A's idle
    leave on the same read, then whichever writes second loses: a session is never placed on
    a host that has left."""
    idle = host(A, started=NOW - 1000, ready=NOW - 900)
    busy = host(B, started=NOW - 1000, ready=NOW - 900, last_inference_at=NOW, connected_sessions=1)
    before = snapshot(idle, busy)
    leave_decision = decide(before, settings, NOW)
    (leave,) = [a for a in leave_decision if isinstance(a, Transition) and a.name == "leave"]
    arrived = snapshot(idle, busy, sessions=sessions(("ann", "s1", None)))
    place_decision = decide(arrived, settings, NOW - 30)
    (place,) = [a for a in place_decision if isinstance(a, Transition) and a.name == "place"]
    assert place.updates[1].key == f"host#{A}"

    placed_first = try_apply(arrived, place)
    assert placed_first is not None
    assert try_apply(placed_first, leave) is None

    left_first = try_apply(arrived, leave)
    assert left_first is not None
    assert try_apply(left_first, place) is None
    assert calls(leave_decision)[-1] == SetDesired(1)
