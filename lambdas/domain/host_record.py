"""The records of the control table: the host record and the session items, their keys, and the
updates the GPU backend makes to the host record.

One DynamoDB table, partition key `pk` (docs/architecture.md, "The table"). The control plane
reads and writes it through `lambdas.aws.store`; the GPU backend (`gpu_host.backend.reporter`)
writes only the fields named by `Milestone` and `BackendField`, with the updates built here.
Both sides import this module (the GPU host's release ships `lambdas/` for it), so a field has
one name. It must stay importable without boto3: the backend imports it at start.

Times are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

PARTITION_KEY: Final = "pk"
HOST_PREFIX: Final = "host#"
SESSION_PREFIX: Final = "session#"

RECORD_EXISTS: Final = f"attribute_exists({PARTITION_KEY})"
"""The condition of every backend update: the backend never creates a host record."""


def host_key(host_id: str) -> str:
    """The partition key of host `host_id`'s record."""
    return HOST_PREFIX + host_id


def session_key(session_id: str) -> str:
    """The partition key of a session item."""
    return SESSION_PREFIX + session_id


Desired = Literal["running", "stopped"]


class Milestone(StrEnum):
    """The backend's readiness steps; each is the host record field holding when it happened."""

    BACKEND_UP = "backend_up_at"
    MODELS_LOADED = "models_loaded_at"
    READY = "ready_at"


class BackendField(StrEnum):
    """The backend's activity fields. Everything else in the host record, apart from the
    milestones, is written by the control plane only."""

    LAST_INFERENCE_AT = "last_inference_at"
    CONNECTED_SESSIONS = "connected_sessions"
    GENERATION = "generation"
    """Shared: bumped by every start request, keepalive and heartbeat; a stop must match it."""


@dataclass(frozen=True)
class BackendUpdate:
    """One update of the host record by the backend: a DynamoDB update expression and its
    values, plain numbers that the writer encodes. Applied under `RECORD_EXISTS`."""

    expression: str
    values: Mapping[str, float | int]


def milestone_update(milestone: Milestone, at: float) -> BackendUpdate:
    return BackendUpdate(f"SET {milestone} = :now", {":now": at})


def sessions_update(count: int) -> BackendUpdate:
    """The connected socket count changed. Not activity: `generation` stays."""
    return BackendUpdate(f"SET {BackendField.CONNECTED_SESSIONS} = :n", {":n": count})


def heartbeat_update(at: float, sessions: int) -> BackendUpdate:
    """Frames were inferred: activity, so `generation` moves and a stop decided on the old
    generation loses its conditional write."""
    return BackendUpdate(
        f"SET {BackendField.LAST_INFERENCE_AT} = :now, {BackendField.CONNECTED_SESSIONS} = :n "
        f"ADD {BackendField.GENERATION} :one",
        {":now": at, ":n": sessions, ":one": 1},
    )


class SessionLease(BaseModel):
    """One API session's claim on the GPU, kept in the host record (`HostRecord.sessions`)."""

    model_config = ConfigDict(frozen=True)

    created_at: float
    expires_at: float


class HostRecord(BaseModel):
    """The host record `host#<host_id>` as read. Defaults are what a fresh record holds."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    host_id: str
    """From the key, not stored as an attribute."""
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

    # Written by the backend: `Milestone` and `BackendField` (with `generation`).
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


class SessionItem(BaseModel):
    """A session item `session#<id>`: who opened it, when, and whether it was released."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    session_id: str
    user: str
    created_at: float
    expires_at: float
    released_at: float | None = None
