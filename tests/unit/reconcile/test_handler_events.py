"""Which events the reconcile Lambda handles, and how it reads them."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.reconcile.handler import state_change_of

SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def state_change(
    instance_id: str = "i-0123456789abcdef0", state: str = "stopped"
) -> dict[str, Any]:
    return {
        "source": "aws.ec2",
        "detail-type": "EC2 Instance State-change Notification",
        "detail": {"instance-id": instance_id, "state": state},
    }


def test_a_state_change_is_read() -> None:
    change = state_change_of(state_change(state="stopping"))
    assert change is not None
    assert (change.instance_id, change.state) == ("i-0123456789abcdef0", "stopping")


@pytest.mark.parametrize("event", [SCHEDULE, {}, {"detail-type": "Object Created"}])
def test_anything_else_is_a_tick(event: dict[str, Any]) -> None:
    assert state_change_of(event) is None


def test_a_malformed_state_change_is_an_error() -> None:
    event = state_change()
    del event["detail"]["instance-id"]
    with pytest.raises(ValueError, match="malformed EC2 state-change event"):
        state_change_of(event)
