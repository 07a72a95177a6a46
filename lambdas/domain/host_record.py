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
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

PARTITION_KEY: Final = "pk"
FLEET_KEY: Final = "fleet"
HOST_PREFIX: Final = "host#"
SESSION_PREFIX: Final = "session#"

RECORD_EXISTS: Final = f"attribute_exists({PARTITION_KEY})"
"""The condition of every backend update: the backend never creates a host record."""


def host_key(host_id: str) -> str:
    """The partition key of host `host_id`'s record."""
    return HOST_PREFIX + host_id


def host_id_of(key: str) -> str:
    return key.removeprefix(HOST_PREFIX)


def session_key(session_id: str) -> str:
    """The partition key of a session item."""
    return SESSION_PREFIX + session_id


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
    MODELS_LOADED = "models_loaded"
    """The models Triton holds, by name (a list): written when the set changes and with
    every heartbeat. Absent from records of backends that load every model at start."""


@dataclass(frozen=True)
class BackendUpdate:
    """One update of the host record by the backend: a DynamoDB update expression and its
    values, plain numbers that the writer encodes. Applied under `RECORD_EXISTS`."""

    expression: str
    values: Mapping[str, float | int | tuple[str, ...]]


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


def models_update(names: tuple[str, ...]) -> BackendUpdate:
    """The models Triton holds changed (or a heartbeat repeats them). Not activity."""
    return BackendUpdate(f"SET {BackendField.MODELS_LOADED} = :models", {":models": names})


class Lease(BaseModel):
    """One API session's claim on the fleet, kept in the fleet record (`FleetRecord.sessions`)."""

    model_config = ConfigDict(frozen=True)

    created_at: float
    expires_at: float
    host_id: str | None = None
    """The host reconcile placed the session on; None while it waits for one."""


class HostRecord(BaseModel):
    """The host record `host#<instance id>` as read. Defaults are what a fresh record holds.

    One per instance of the fleet; a *run* is one stretch of the instance in service, from the
    moment reconcile sees it serving (`open_run`) until it leaves."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    host_id: str
    """The instance id, from the key (not stored as an attribute)."""
    generation: int = 0
    """Bumped by every placement, keepalive and backend heartbeat; a stop must match it."""

    run_seq: int = 0
    run_open: bool = False
    started_at: float | None = None
    stop_pending: bool = False
    """The host was told to leave (unprotected, desired capacity lowered); it is no longer
    placed on, and the leave is converged until the group has taken it out of service."""
    stopped_at: float | None = None
    stop_reason: str | None = None
    instance_type: str | None = None
    cold_start_seq: int = 0
    """The run whose cold start was recorded last (so it is recorded once)."""
    routed_at: float | None = None
    """When its route (host id → origin) was written this run: sockets reach it from then."""
    route_origin: str | None = None

    # Written by the backend: `Milestone` and `BackendField` (with `generation`).
    last_inference_at: float | None = None
    connected_sessions: int = 0
    backend_up_at: float | None = None
    models_loaded_at: float | None = None
    ready_at: float | None = None
    models_loaded: tuple[str, ...] | None = None
    """The models its Triton holds (`BackendField.MODELS_LOADED`); None: not reported."""

    # Activity and intent from the control API.
    last_start_request_at: float | None = None
    """The last session placed on it (a start request is activity)."""
    last_keepalive_at: float | None = None
    last_release_at: float | None = None

    message: str = ""
    """The last noteworthy event of this host, for people: why it stopped."""
    error: str | None = None

    def after_start(self, value: float | None) -> float | None:
        """A readiness step counts only when it happened in the current run."""
        if value is None or self.started_at is None or value <= self.started_at:
            return None
        return value

    @property
    def routed_this_run(self) -> bool:
        at, start = self.routed_at, self.started_at
        return at is not None and start is not None and at >= start

    @property
    def ready_this_run(self) -> float | None:
        """Ready: the backend warmed up and the route to it is written, both in this run."""
        ready = self.after_start(self.ready_at)
        if ready is None or not self.routed_this_run:
            return None
        return max(ready, self.routed_at or ready)


class FleetRecord(BaseModel):
    """The fleet record `fleet`: the sessions and where they are placed, the capacity reconcile
    wants, and what the whole fleet has used of today's GPU budget."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = 0
    """Bumped by every placement, scale change and leave: two reconciles deciding at once end
    up with one capacity change."""
    desired_capacity: int = 0
    """What reconcile wants the group's desired capacity to be (the group is converged on it)."""
    scaled_out_at: float | None = None
    """When the desired capacity was last raised: failures after it are this scale-out's."""
    sessions: dict[str, dict[str, Lease]] = Field(default_factory=dict)
    """user → session_id → lease. One map, so that one conditional write enforces the
    per-user limit however many requests race for it."""
    ended: dict[str, str] = Field(default_factory=dict)
    """user → why their last session ended with its host (an idle stop, say); shown in their
    status until they start again."""
    routes: dict[str, str] = Field(default_factory=dict)
    """host id → origin, as written to the route table (the KeyValueStore): reconcile reads
    this, never the store (a listing per reconcile would cost more than everything else)."""
    runs: dict[str, float] = Field(default_factory=dict)
    """host id → start of its open run: the budget counts open runs from here."""
    replacements: int = 0
    """Hosts replaced in a row because they never became ready; reset by a ready host."""
    budget_day: str | None = None
    """UTC day (YYYY-MM-DD) that `budget_used_s` counts; closed runs only."""
    budget_used_s: float = 0.0
    cold_starts: tuple[float, ...] = ()
    """Seconds from a host's start to ready, the last runs, oldest first."""
    message: str = ""
    error: str | None = None
    """Why the last scale-out failed; shown until the next start request."""

    @property
    def open_session_count(self) -> int:
        return sum(len(leases) for leases in self.sessions.values())

    def sessions_of(self, user: str) -> dict[str, Lease]:
        return self.sessions.get(user, {})

    def placed_on(self, host_id: str) -> dict[tuple[str, str], Lease]:
        """(user, session id) → lease of the sessions placed on `host_id`."""
        return {
            (user, sid): lease
            for user, leases in self.sessions.items()
            for sid, lease in leases.items()
            if lease.host_id == host_id
        }

    def unplaced(self) -> list[tuple[str, str, Lease]]:
        """(user, session id, lease) of the sessions waiting for a host, oldest first."""
        waiting = [
            (user, sid, lease)
            for user, leases in self.sessions.items()
            for sid, lease in leases.items()
            if lease.host_id is None
        ]
        return sorted(waiting, key=lambda entry: (entry[2].created_at, entry[1]))


class SessionItem(BaseModel):
    """A session item `session#<id>`: who opened it, when, and whether it was released."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    session_id: str
    user: str
    created_at: float
    expires_at: float
    released_at: float | None = None
