"""The reconcile Lambda: EventBridge's one-minute schedule, EC2 state-change events and the
fleet group's Auto Scaling events.

All run the same idempotent reconcile of the whole fleet (an EC2 event of an instance outside
the group costs one reconcile that changes nothing). Any other event (a manual test invoke)
counts as a tick.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.aws.clients import Clients, make_clients
from lambdas.reconcile.service import ReconcileResult, reconcile_once
from lambdas.settings import Settings

log = logging.getLogger(__name__)

STATE_CHANGE = "EC2 Instance State-change Notification"


class StateChangeDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    instance_id: str = Field(alias="instance-id")
    state: str


class StateChangeEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    detail: StateChangeDetail


@functools.cache
def _runtime() -> tuple[Settings, Clients]:
    """Settings and clients, read and created once per Lambda execution environment."""
    logging.getLogger("lambdas").setLevel(logging.INFO)
    settings = Settings()
    return settings, make_clients(settings)


def state_change_of(event: Mapping[str, Any]) -> StateChangeDetail | None:
    if event.get("detail-type") != STATE_CHANGE:
        return None
    try:
        return StateChangeEvent.model_validate(event).detail
    except ValidationError as error:
        raise ValueError(f"malformed EC2 state-change event: {error}") from error


def handle(
    event: Mapping[str, Any], settings: Settings, clients: Clients, now: float
) -> dict[str, Any]:
    change = state_change_of(event)
    if change is not None:
        log.info("EC2 reports %s %s", change.instance_id, change.state)
    result = reconcile_once(settings, clients, now)
    return _summary(result)


def _summary(result: ReconcileResult) -> dict[str, Any]:
    after = result.after
    return {
        "desired_capacity": after.fleet.desired_capacity,
        "hosts": {i.instance_id: i.lifecycle_state for i in after.group.instances if i.serving},
        "sessions": after.fleet.open_session_count,
        "done": list(result.done),
    }


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    settings, clients = _runtime()
    return handle(event, settings, clients, time.time())
