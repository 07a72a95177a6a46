"""Which events the reconcile Lambda handles: every one reconciles the whole fleet; an EC2
state change is read (and a malformed one refused)."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.aws.clients import Clients
from lambdas.reconcile import handler
from lambdas.reconcile.handler import handle, state_change_of
from lambdas.reconcile.service import ReconcileResult
from lambdas.settings import Settings
from tests.unit.domain.conftest import NOW, A, host, instance, make_settings, sessions, snapshot

SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def state_change(instance_id: str = A, state: str = "stopped") -> dict[str, Any]:
    return {
        "source": "aws.ec2",
        "detail-type": "EC2 Instance State-change Notification",
        "detail": {"instance-id": instance_id, "state": state},
    }


def autoscaling(detail_type: str) -> dict[str, Any]:
    return {
        "source": "aws.autoscaling",
        "detail-type": detail_type,
        "detail": {"AutoScalingGroupName": "spinup-gpu", "EC2InstanceId": A},
    }


EVENTS = {
    "schedule": SCHEDULE,
    "ec2_state_change": state_change(state="running"),
    "ec2_state_change_outside_the_group": state_change("i-0fffffffffffffff9", "stopped"),
    "launch_successful": autoscaling("EC2 Instance Launch Successful"),
    "launch_unsuccessful": autoscaling("EC2 Instance Launch Unsuccessful"),
    "launch_lifecycle_action": autoscaling("EC2 Instance-launch Lifecycle Action"),
    "terminate_successful": autoscaling("EC2 Instance Terminate Successful"),
    "manual_test_invoke": {},
}


@pytest.mark.parametrize("event", list(EVENTS))
def test_any_event_reconciles_the_whole_fleet(event: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings()
    clients: Any = object()
    after = snapshot(host(A), instances=[instance(A)], sessions=sessions(("ann", "s1", A)))
    seen: list[tuple[Settings, Clients, float]] = []

    def reconcile_once(s: Settings, c: Clients, now: float) -> ReconcileResult:
        seen.append((s, c, now))
        return ReconcileResult(before=after, actions=(), done=("routed",), after=after)

    monkeypatch.setattr(handler, "reconcile_once", reconcile_once)
    summary = handle(EVENTS[event], settings, clients, NOW)
    assert seen == [(settings, clients, NOW)]
    assert summary == {
        "desired_capacity": 1,
        "hosts": {A: "InService"},
        "sessions": 1,
        "done": ["routed"],
    }


def test_a_state_change_is_read() -> None:
    change = state_change_of(state_change(state="stopping"))
    assert change is not None
    assert (change.instance_id, change.state) == (A, "stopping")


@pytest.mark.parametrize("event", ["schedule", "launch_successful", "manual_test_invoke"])
def test_anything_else_is_a_tick(event: str) -> None:
    assert state_change_of(EVENTS[event]) is None


@pytest.mark.parametrize("missing", ["instance-id", "state"])
def test_a_malformed_state_change_is_an_error(
    missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = state_change()
    del event["detail"][missing]
    monkeypatch.setattr(handler, "reconcile_once", _never)
    with pytest.raises(ValueError, match="malformed EC2 state-change event"):
        handle(event, make_settings(), object(), NOW)  # type: ignore[arg-type]


def _never(*args: object) -> ReconcileResult:
    raise AssertionError("a malformed event must not reconcile")
