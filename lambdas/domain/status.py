"""What a user sees: their sessions, the phase of each one's host, the time to ready, when it
will stop, and a message.

Pure functions of a snapshot and the clock; the control API serves them as `GET /api/status`.
The top-level phase is the caller's newest session's (the UI follows that one); each session
carries its own host's phase and socket URL.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime

from lambdas.domain import budget
from lambdas.domain.decide import fleet_capacity_text
from lambdas.domain.fleet import GroupInstance
from lambdas.domain.host_record import FleetRecord, HostRecord, Lease
from lambdas.domain.model import Phase, Snapshot
from lambdas.domain.stop_rules import plan_stop
from lambdas.settings import Settings

DEFAULT_COLD_START_S = 240.0
"""The first ETA, before any cold start was measured: a GPU host starting from the warm pool,
loading models and warming up takes a few minutes."""

MIN_ETA_S = 5
"""A start that overruns its estimate still says "a few seconds", never 0 while not ready."""


@dataclass(frozen=True)
class SessionStatus:
    session_id: str
    created_at: float
    expires_at: float
    host_id: str | None
    phase: Phase
    ws_url: str | None
    """The socket of the session's host, once it is ready."""
    instance_state: str
    eta_s: int | None
    stop_at: float | None
    message: str
    start_phases: dict[str, float]
    """Seconds from the host's start to each phase it reached in this run (`start_phases`)."""


@dataclass(frozen=True)
class UserStatus:
    phase: Phase
    instance_state: str
    ws_url: str | None
    eta_s: int | None
    stop_at: float | None
    message: str
    sessions: tuple[SessionStatus, ...]
    start_phases: dict[str, float]


def host_phase(host: HostRecord, instance: GroupInstance | None) -> Phase:
    if host.stop_pending:
        return "stopping"
    if not host.run_open:
        return "error" if host.error else "stopped"
    if instance is None or not instance.serving:
        return "stopping"
    if instance.ec2_state != "running":
        return "starting"
    return "ready" if host.ready_this_run is not None else "booting"


def typical_cold_start_s(fleet: FleetRecord) -> float:
    return statistics.median(fleet.cold_starts) if fleet.cold_starts else DEFAULT_COLD_START_S


def _eta_s(fleet: FleetRecord, phase: Phase, started_at: float | None, now: float) -> int | None:
    """Seconds until ready: the median of the recorded cold starts, minus what has passed."""
    typical = typical_cold_start_s(fleet)
    match phase:
        case "ready":
            return 0
        case "error":
            return None
        case "starting" | "booting" if started_at is not None:
            return max(MIN_ETA_S, round(typical - (now - started_at)))
        case _:
            return round(typical)


def host_stop_at(
    snapshot: Snapshot, host: HostRecord, settings: Settings, now: float
) -> float | None:
    """When the host will leave unless it is used: for countdowns."""
    if host.stop_pending:
        return host.stopped_at
    plan = plan_stop(
        host,
        settings,
        placed=len(snapshot.fleet.placed_on(host.host_id)),
        out_of_budget=budget.exhausted_at(snapshot.fleet, settings, now),
    )
    return None if plan is None else round(plan.at, 3)


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")


START_PHASES = ("instance_running", "backend_up", "models_loaded", "ready")
"""A host's cold start, in order: EC2 runs it (and its route is written), the backend is up
(Triton answering), Triton's models are loaded, the warm-up inference is done."""


def start_phases(host: HostRecord) -> dict[str, float]:
    """Seconds from the run's start to each phase reached in this run, for the status (and
    for an operator reading real cold starts: docs/performance.md)."""
    if not host.run_open or host.started_at is None:
        return {}
    marks = (
        host.routed_at if host.routed_this_run else None,
        host.after_start(host.backend_up_at),
        host.after_start(host.models_loaded_at),
        host.after_start(host.ready_at),
    )
    return {
        name: round(at - host.started_at, 3)
        for name, at in zip(START_PHASES, marks, strict=True)
        if at is not None
    }


def _booting_text(host: HostRecord) -> str:
    if host.after_start(host.models_loaded_at):
        return "Models loaded; warming up."
    if host.after_start(host.backend_up_at):
        return "Backend up; loading models."
    return "GPU host running; starting the inference server."


def _host_text(
    host: HostRecord, instance: GroupInstance | None, phase: Phase, stops: float | None
) -> str:
    match phase:
        case "starting":
            kind = instance.instance_type if instance else "GPU"
            return f"Starting a GPU host ({kind})."
        case "booting":
            return _booting_text(host)
        case "ready":
            return f"Ready. Stops at {_clock(stops)} if unused." if stops else "Ready."
        case "stopping":
            return "Your GPU host is stopping."
        case "error":
            return host.error or "The GPU host failed."
        case "stopped":
            return "Stopped."


def session_status(
    snapshot: Snapshot, settings: Settings, now: float, session_id: str, lease: Lease
) -> SessionStatus:
    fleet = snapshot.fleet
    if lease.host_id is None:
        full = len(fleet.runs) >= snapshot.group.max_size and fleet.desired_capacity >= (
            snapshot.group.max_size
        )
        message = (
            f"{fleet_capacity_text(settings, snapshot.group.max_size)}; you get a place as soon "
            "as one frees up."
            if full
            else f"Starting a GPU host ({settings.instance_types[0]})."
        )
        return SessionStatus(
            session_id=session_id,
            created_at=lease.created_at,
            expires_at=lease.expires_at,
            host_id=None,
            phase="starting",
            ws_url=None,
            instance_state="pending",
            eta_s=_eta_s(fleet, "starting", lease.created_at, now),
            stop_at=None,
            message=message,
            start_phases={},
        )
    host = snapshot.host(lease.host_id)
    instance = snapshot.instance(lease.host_id)
    phase = host_phase(host, instance)
    stops = host_stop_at(snapshot, host, settings, now) if phase != "stopped" else None
    text = _host_text(host, instance, phase, stops)
    return SessionStatus(
        session_id=session_id,
        created_at=lease.created_at,
        expires_at=lease.expires_at,
        host_id=lease.host_id,
        phase=phase,
        ws_url=(settings.ws_url_for(lease.host_id) or None) if phase == "ready" else None,
        instance_state=(instance.ec2_state or "pending") if instance else "missing",
        eta_s=_eta_s(fleet, phase, host.started_at, now),
        stop_at=stops,
        message=text,
        start_phases=start_phases(host),
    )


def user_status(snapshot: Snapshot, settings: Settings, now: float, user: str) -> UserStatus:
    leases = snapshot.fleet.sessions_of(user)
    sessions = tuple(
        session_status(snapshot, settings, now, sid, lease)
        for sid, lease in sorted(leases.items(), key=lambda pair: pair[1].created_at)
        if lease.expires_at > now
    )
    if sessions:
        newest = sessions[-1]
        return UserStatus(
            phase=newest.phase,
            instance_state=newest.instance_state,
            ws_url=newest.ws_url,
            eta_s=newest.eta_s,
            stop_at=newest.stop_at,
            message=newest.message,
            sessions=sessions,
            start_phases=newest.start_phases,
        )
    fleet = snapshot.fleet
    running = len(fleet.runs)
    if fleet.error:
        phase: Phase = "error"
        message = fleet.error
    else:
        phase = "stopped"
        busy = (
            f" {running} GPU host{'s' if running != 1 else ''} running for others."
            if running
            else ""
        )
        ended = fleet.ended.get(user)
        message = f"Stopped. {ended}" if ended else "Stopped. Press Start to start a GPU host."
        message += busy
    return UserStatus(
        phase=phase,
        instance_state="none",
        ws_url=None,
        eta_s=None if phase == "error" else round(typical_cold_start_s(fleet)),
        stop_at=None,
        message=message,
        sessions=(),
        start_phases={},
    )
