"""What reconcile decides on: the host record, the EC2 view of the instance, and both together.

The host record is the DynamoDB item `host#<HOST_ID>` (docs/architecture.md, "The table").
Times are epoch seconds. The backend writes `last_inference_at`, `connected_sessions`,
`backend_up_at`, `models_loaded_at`, `ready_at` and bumps `generation`; everything else is
written by the control plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Ec2State = Literal["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]
Desired = Literal["running", "stopped"]
Phase = Literal["stopped", "starting", "booting", "ready", "stopping", "error"]


class SessionLease(BaseModel):
    """One API session's claim on the GPU, kept in the host record (`HostRecord.sessions`)."""

    model_config = ConfigDict(frozen=True)

    created_at: float
    expires_at: float


class HostRecord(BaseModel):
    """The host record as read. Defaults are what a fresh record holds."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    host_id: str
    instance_id: str | None = None
    desired: Desired = "stopped"
    generation: int = 0
    """Bumped by every start request, keepalive and backend heartbeat; a stop must match it."""

    # The current run: one StartInstances (or an instance found running) until its stop.
    run_seq: int = 0
    run_open: bool = False
    run_adopted: bool = False
    """The run was started outside Spinup and adopted; its boot time is not a cold start."""
    started_at: float | None = None
    stop_pending: bool = False
    """A stop was decided and written; StopInstances is issued until EC2 reports `stopped`."""
    stopped_at: float | None = None
    stop_reason: str | None = None
    instance_type: str | None = None

    # Written by the backend (gpu_host.backend.reporter).
    last_inference_at: float | None = None
    connected_sessions: int = 0
    backend_up_at: float | None = None
    models_loaded_at: float | None = None
    ready_at: float | None = None

    # Activity and intent from the control API.
    last_start_request_at: float | None = None
    last_keepalive_at: float | None = None
    last_release_at: float | None = None
    sessions: dict[str, dict[str, SessionLease]] = Field(default_factory=dict)
    """user → session_id → lease. Kept here so that one conditional write can enforce the
    per-user limit; cleared whenever the instance is stopped (a session lasts one run)."""

    budget_day: str | None = None
    """UTC day (YYYY-MM-DD) that `budget_used_s` counts; closed runs only."""
    budget_used_s: float = 0.0
    cold_starts: tuple[float, ...] = ()
    """Seconds from start to ready of the last runs, oldest first."""
    cold_start_seq: int = 0
    """The run whose cold start was recorded last (so it is recorded once)."""

    message: str = ""
    """The last noteworthy event, for people: capacity attempts, why it stopped."""
    error: str | None = None
    """Why the last start failed; the phase is `error` until the next start request."""

    def after_start(self, value: float | None) -> float | None:
        """A readiness step counts only when it happened in the current run."""
        if value is None or self.started_at is None or value <= self.started_at:
            return None
        return value

    @property
    def ready_this_run(self) -> float | None:
        return self.after_start(self.ready_at)

    @property
    def open_session_count(self) -> int:
        return sum(len(leases) for leases in self.sessions.values())

    def sessions_of(self, user: str) -> dict[str, SessionLease]:
        return self.sessions.get(user, {})


@dataclass(frozen=True)
class InstanceView:
    """What EC2 says about the instance right now."""

    instance_id: str
    state: Ec2State
    instance_type: str
    launch_time: float | None = None
    zone: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything `decide` looks at. `instance` is None when EC2 does not know the id."""

    host: HostRecord
    instance: InstanceView | None


class SessionItem(BaseModel):
    """A session item `session#<id>`: who opened it, when, and whether it was released."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    session_id: str
    user: str
    created_at: float
    expires_at: float
    released_at: float | None = None
