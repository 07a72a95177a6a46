"""Reconcile's one decision: given the host record, EC2's view and the clock, what to do.

Pure: no I/O, no clock of its own. The service reads the snapshot, calls `decide`, and applies
the returned actions, each guarded by the values it was decided on (see `actions`).
"""

from __future__ import annotations

from lambdas.domain import budget
from lambdas.domain.actions import Action, Ec2Call, RetryStop, Transition, Value
from lambdas.domain.host_record import HostRecord
from lambdas.domain.model import InstanceView, Snapshot
from lambdas.domain.stop_rules import StopPlan, explain, plan_stop
from lambdas.settings import Settings

START_IN_FLIGHT_S = 120.0
"""A claimed start whose instance still reads `stopped` is in flight for this long (EC2's
view lags StartInstances); after that the run is taken as ended outside Spinup."""

COLD_STARTS_KEPT = 10


def decide(snapshot: Snapshot, settings: Settings, now: float) -> list[Action]:
    host, instance = snapshot.host, snapshot.instance
    if instance is None:
        return _instance_gone(host, instance, settings, now)
    match instance.state:
        case "shutting-down" | "terminated":
            return _instance_gone(host, instance, settings, now)
        case "stopped":
            return _when_stopped(host, settings, now)
        case "pending":
            return [] if host.run_open or host.stop_pending else [_adopt(host, instance, now)]
        case "running":
            return _when_running(host, instance, settings, now)
        case "stopping":
            return []


def missing_instance_message(instance: InstanceView | None, settings: Settings) -> str:
    if instance is None:
        return (
            f"The GPU instance {settings.instance_id} does not exist in {settings.aws_region}. "
            "Redeploy the stack (cdk deploy) or set SPINUP_INSTANCE_ID to the instance's id."
        )
    return (
        f"The GPU instance {instance.instance_id} is {instance.state}; it cannot be started. "
        "Redeploy the stack (cdk deploy) to create a new one."
    )


def _when_stopped(host: HostRecord, settings: Settings, now: float) -> list[Action]:
    if host.run_open:
        if host.started_at is not None and now - host.started_at < START_IN_FLIGHT_S:
            return []
        return [_ended_outside(host, now)]
    if host.desired == "running":
        refusal = budget.refusal(host, settings, now)
        return [_cancel_start(host, refusal)] if refusal else [_claim_start(host, now)]
    if host.stop_pending:
        return [
            Transition(
                "stop_finished",
                expect={"stop_pending": True, "run_open": False},
                changes={"stop_pending": False},
            )
        ]
    return []


def _when_running(
    host: HostRecord, instance: InstanceView, settings: Settings, now: float
) -> list[Action]:
    if host.stop_pending:
        # The stop was decided and written; a start requested since then runs once EC2
        # reports `stopped`, so the stop is finished first.
        return [RetryStop()]
    if not host.run_open:
        return [_adopt(host, instance, now)]
    actions: list[Action] = []
    ready = host.ready_this_run
    first_look = host.cold_start_seq != host.run_seq and not host.run_adopted
    if ready is not None and host.started_at is not None and first_look:
        actions.append(_record_cold_start(host, ready - host.started_at))
    plan = plan_stop(host, settings, now)
    if plan is not None and plan.at <= now:
        actions.append(_stop(host, plan, settings, now))
    return actions


def _claim_start(host: HostRecord, now: float) -> Transition:
    return Transition(
        "claim_start",
        expect={"run_seq": host.run_seq, "run_open": False, "desired": "running"},
        changes={
            "run_seq": host.run_seq + 1,
            "run_open": True,
            "run_adopted": False,
            "started_at": now,
            "stop_pending": False,
            "connected_sessions": 0,
            "error": None,
            "message": "",
        },
        then=Ec2Call.START,
    )


def _stop(host: HostRecord, plan: StopPlan, settings: Settings, now: float) -> Transition:
    """The stop lock: applied only if no start, keepalive or heartbeat bumped `generation`."""
    return Transition(
        "stop",
        expect={"generation": host.generation, "run_seq": host.run_seq, "run_open": True},
        changes={
            "desired": "stopped",
            "run_open": False,
            "stop_pending": True,
            "stopped_at": now,
            "stop_reason": plan.reason.value,
            "sessions": {},
            "message": explain(plan.reason, settings),
            **budget.close_run(host, now),
        },
        then=Ec2Call.STOP,
    )


def _adopt(host: HostRecord, instance: InstanceView, now: float) -> Transition:
    """An instance running without a run of ours (started from the console, say): the idle
    rules apply to it from its launch."""
    launched = instance.launch_time
    fresh = launched is not None and (host.stopped_at or 0.0) < launched <= now
    return Transition(
        "adopt_run",
        expect={"run_seq": host.run_seq, "run_open": False, "stop_pending": False},
        changes={
            "run_seq": host.run_seq + 1,
            "run_open": True,
            "run_adopted": True,
            "started_at": launched if fresh else now,
            "message": "The instance was started outside Spinup; it stops when idle.",
        },
    )


def _ended_outside(host: HostRecord, now: float) -> Transition:
    return Transition(
        "run_ended_outside",
        expect={"run_seq": host.run_seq, "run_open": True},
        changes={
            "desired": "stopped",
            "run_open": False,
            "stopped_at": now,
            "stop_reason": "outside",
            "sessions": {},
            "message": (
                "The instance stopped outside Spinup (console, on-host watchdog, or a start "
                "that did not go through). Press Start to start it again."
            ),
            **budget.close_run(host, now),
        },
    )


def _cancel_start(host: HostRecord, refusal: str) -> Transition:
    return Transition(
        "cancel_start",
        expect={"generation": host.generation, "run_open": False, "desired": "running"},
        changes={"desired": "stopped", "sessions": {}, "message": refusal},
    )


def _record_cold_start(host: HostRecord, seconds: float) -> Transition:
    kept = (*host.cold_starts, round(seconds, 3))[-COLD_STARTS_KEPT:]
    return Transition(
        "record_cold_start",
        expect={"cold_start_seq": host.cold_start_seq},
        changes={"cold_start_seq": host.run_seq, "cold_starts": kept},
    )


def _instance_gone(
    host: HostRecord, instance: InstanceView | None, settings: Settings, now: float
) -> list[Action]:
    """Nothing can start: make sure nothing is left wanting it (the phase says `error`)."""
    if host.desired == "stopped" and not host.run_open and not host.sessions:
        return []
    changes: dict[str, Value] = {
        "desired": "stopped",
        "run_open": False,
        "stop_pending": False,
        "sessions": {},
        "message": missing_instance_message(instance, settings),
    }
    if host.run_open:
        changes.update(budget.close_run(host, now))
    return [
        Transition(
            "instance_gone",
            expect={"run_seq": host.run_seq, "run_open": host.run_open},
            changes=changes,
        )
    ]
