"""What a user sees: the phase, the time to ready, when it will stop, and a message.

Pure functions of a snapshot and the clock; the control API serves them as `GET /api/status`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime

from lambdas.domain.decide import missing_instance_message
from lambdas.domain.host_record import HostRecord
from lambdas.domain.model import Phase, Snapshot
from lambdas.domain.stop_rules import plan_stop
from lambdas.settings import Settings

DEFAULT_COLD_START_S = 240.0
"""The first ETA, before any cold start was measured: a GPU instance booting, pulling nothing,
loading models and warming up takes a few minutes."""

MIN_ETA_S = 5
"""A start that overruns its estimate still says "a few seconds", never 0 while not ready."""


@dataclass(frozen=True)
class HostStatus:
    phase: Phase
    instance_state: str
    eta_s: int | None
    stop_at: float | None
    message: str


def phase_of(snapshot: Snapshot) -> Phase:
    host, instance = snapshot.host, snapshot.instance
    if instance is None:
        return "error"
    match instance.state:
        case "shutting-down" | "terminated":
            return "error"
        case "pending":
            return "starting"
        case "stopping":
            return "stopping"
        case "stopped":
            if host.desired == "running" or host.run_open:
                return "starting"
            return "error" if host.error else "stopped"
        case "running":
            if host.stop_pending:
                return "stopping"
            return "ready" if host.run_open and host.ready_this_run else "booting"


def typical_cold_start_s(host: HostRecord) -> float:
    return statistics.median(host.cold_starts) if host.cold_starts else DEFAULT_COLD_START_S


def eta_s(snapshot: Snapshot, phase: Phase, now: float) -> int | None:
    """Seconds until ready: the median of the recorded cold starts, minus what has passed."""
    typical = typical_cold_start_s(snapshot.host)
    match phase:
        case "ready":
            return 0
        case "error":
            return None
        case "starting" | "booting" if snapshot.host.run_open and snapshot.host.started_at:
            return max(MIN_ETA_S, round(typical - (now - snapshot.host.started_at)))
        case _:
            return round(typical)


def stop_at(snapshot: Snapshot, settings: Settings, now: float) -> float | None:
    """When the running instance will stop unless it is used (or was stopped): for countdowns."""
    host = snapshot.host
    if snapshot.instance is None or snapshot.instance.state not in ("pending", "running"):
        return None
    if host.stop_pending:
        return host.stopped_at
    plan = plan_stop(host, settings, now)
    return None if plan is None else round(plan.at, 3)


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")


def _booting_text(host: HostRecord) -> str:
    if host.after_start(host.models_loaded_at):
        return "Models loaded; warming up."
    if host.after_start(host.backend_up_at):
        return "Backend up; loading models."
    return "Instance running; starting the inference server."


def _phase_text(snapshot: Snapshot, phase: Phase, settings: Settings, stops: float | None) -> str:
    host = snapshot.host
    match phase:
        case "error" if host.error and snapshot.instance and snapshot.instance.state == "stopped":
            return host.error
        case "error":
            return missing_instance_message(snapshot.instance, settings)
        case "stopped":
            return "Stopped." if host.message else "Stopped. Press Start to start the GPU instance."
        case "starting":
            instance = snapshot.instance
            kind = instance.instance_type if instance else settings.default_instance_type
            return f"Starting the GPU instance ({kind})."
        case "booting":
            return _booting_text(host)
        case "ready":
            return f"Ready. Stops at {_clock(stops)} if unused." if stops else "Ready."
        case "stopping":
            if host.desired == "running":
                return "Stopping; the start you asked for begins as soon as it has stopped."
            return "Stopping."


def host_status(snapshot: Snapshot, settings: Settings, now: float) -> HostStatus:
    phase = phase_of(snapshot)
    stops = stop_at(snapshot, settings, now)
    text = _phase_text(snapshot, phase, settings, stops)
    note = snapshot.host.message
    message = f"{text} {note}" if note and note != text else text
    return HostStatus(
        phase=phase,
        instance_state=snapshot.instance.state if snapshot.instance else "missing",
        eta_s=eta_s(snapshot, phase, now),
        stop_at=stops,
        message=message,
    )
