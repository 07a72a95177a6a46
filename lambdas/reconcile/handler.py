"""The reconcile Lambda: EventBridge's one-minute schedule and EC2 state-change events.

Both run the same idempotent reconcile; a state-change event for another instance is ignored.
Any other event (an EventBridge Scheduler payload, a manual test invoke) counts as a tick.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.aws.clients import Clients, make_clients
from lambdas.domain.status import host_status
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
    if change is not None and change.instance_id != settings.instance_id:
        log.info("ignored a state change of %s (not %s)", change.instance_id, settings.instance_id)
        return {"ignored": change.instance_id}
    if change is not None:
        log.info("EC2 reports %s %s", change.instance_id, change.state)
    result = reconcile_once(settings, clients, now)
    return _summary(result, settings, now)


def _summary(result: ReconcileResult, settings: Settings, now: float) -> dict[str, Any]:
    status = host_status(result.after, settings, now)
    return {
        "phase": status.phase,
        "instance_state": status.instance_state,
        "stop_at": status.stop_at,
        "done": list(result.done),
    }


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    settings, clients = _runtime()
    return handle(event, settings, clients, time.time())
