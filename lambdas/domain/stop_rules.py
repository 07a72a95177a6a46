"""When a host leaves the fleet if nothing else happens, and why.

Idle means no frames inferred; status polls and health checks never count. Activity is the
latest of: ready, a frame inferred (as reported by the backend), a keepalive, a start request.
The host leaves at the earliest of:

- idle: activity + IDLE_AFTER_DISCONNECT_S when no client is connected, else
  activity + IDLE_WHILE_CONNECTED_S (a hidden tab keeps its socket but sends nothing);
- released: the last API session placed on it was released (DELETE) and RELEASE_GRACE_S
  passed. Frames inferred after the release mean someone still uses it: the idle rules decide;
- boot timeout: not ready BOOT_GRACE_S after the start;
- the MAX_RUN_S cap on one run, and the daily GPU budget (across the fleet) running out.

Nothing stops a host between its start and ready, however slow, up to BOOT_GRACE_S.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lambdas.domain.host_record import HostRecord
from lambdas.settings import Settings

REPORT_LAG_S = 30.0
"""The backend writes `last_inference_at` at most every 30 s (docs/architecture.md), so frames
may have flowed up to this long after the recorded time. Idle is counted from the latest time
frames may have flowed, never from the recorded one."""


class StopReason(StrEnum):
    IDLE_DISCONNECTED = "idle_disconnected"
    IDLE_CONNECTED = "idle_connected"
    RELEASED = "released"
    BOOT_TIMEOUT = "boot_timeout"
    MAX_RUN = "max_run"
    BUDGET = "budget"


@dataclass(frozen=True)
class StopPlan:
    at: float
    reason: StopReason


def last_activity(host: HostRecord) -> float | None:
    """The latest moment the current run was in use, or None before it is ready."""
    ready = host.ready_this_run
    if ready is None:
        return None
    frames = host.last_inference_at + REPORT_LAG_S if host.last_inference_at else None
    marks = (ready, frames, host.last_keepalive_at, host.last_start_request_at)
    return max(mark for mark in marks if mark is not None)


def _release_stop_at(host: HostRecord, placed: int, settings: Settings) -> float | None:
    released = host.after_start(host.last_release_at)
    if released is None or placed > 0:
        return None
    frames = host.last_inference_at
    if frames is not None and frames > released:
        return None
    # Frames reported before the release may have flowed up to REPORT_LAG_S longer.
    last_frame = frames + REPORT_LAG_S if frames is not None else released
    return max(released, last_frame) + settings.release_grace_s


def plan_stop(
    host: HostRecord,
    settings: Settings,
    *,
    placed: int,
    out_of_budget: float | None,
) -> StopPlan | None:
    """When and why the open run stops if nothing else happens; None without an open run.

    `placed`: the sessions placed on the host; `out_of_budget`: when the fleet's daily budget
    runs out (`budget.exhausted_at`)."""
    if not host.run_open or host.started_at is None:
        return None
    start = host.started_at
    boot_deadline = start + settings.boot_grace_s
    candidates = [StopPlan(start + settings.max_run_s, StopReason.MAX_RUN)]
    if out_of_budget is not None:
        candidates.append(StopPlan(out_of_budget, StopReason.BUDGET))
    activity = last_activity(host)
    if activity is None:
        candidates.append(StopPlan(boot_deadline, StopReason.BOOT_TIMEOUT))
    else:
        if host.connected_sessions > 0:
            idle = StopPlan(activity + settings.idle_while_connected_s, StopReason.IDLE_CONNECTED)
        else:
            idle = StopPlan(
                activity + settings.idle_after_disconnect_s, StopReason.IDLE_DISCONNECTED
            )
        candidates.append(idle)
        released = _release_stop_at(host, placed, settings)
        if released is not None:
            candidates.append(StopPlan(released, StopReason.RELEASED))
    plan = min(candidates, key=lambda candidate: candidate.at)
    protected_until = host.ready_this_run or boot_deadline
    return StopPlan(max(plan.at, protected_until), plan.reason)


def explain(reason: StopReason, settings: Settings) -> str:
    """Why the run was stopped, as a sentence that follows "Stopping." or "Stopped."."""
    match reason:
        case StopReason.IDLE_DISCONNECTED:
            return (
                f"It was idle: no frames for {settings.idle_after_disconnect_s} s after the "
                "last client disconnected."
            )
        case StopReason.IDLE_CONNECTED:
            return (
                "It was idle: a client stayed connected but sent no frames for "
                f"{settings.idle_while_connected_s} s."
            )
        case StopReason.RELEASED:
            return "Every session was released."
        case StopReason.BOOT_TIMEOUT:
            return (
                f"It was not ready {settings.boot_grace_s} s after its start; check the "
                "host's logs (spinup-backend, spinup-triton)."
            )
        case StopReason.MAX_RUN:
            return f"One run may last at most {settings.max_run_s} s (SPINUP_MAX_RUN_S)."
        case StopReason.BUDGET:
            return (
                f"The daily GPU budget of {settings.daily_gpu_hours:g} h is used up; "
                "it resets at 00:00 UTC."
            )
