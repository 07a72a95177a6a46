"""What the control API's session calls change in the host record: the lease a start request
adds, a keepalive, a release. Pure: `lambdas.aws.expressions` makes each `LeaseChange` one
conditional update and `lambdas.aws.store` applies it; `lambdas.control.plane` runs the calls.

The leases live in the host record (`sessions`: user → session id → lease) so that one
conditional write can enforce the per-user limit, however many requests race for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from lambdas.domain.actions import Value
from lambdas.domain.host_record import HostRecord, SessionItem, SessionLease


class LeaseGuard(StrEnum):
    """What must hold of the user's leases when the change is written."""

    FIRST = "first"
    """The user holds no lease map yet: the change creates it."""
    ROOM = "room"
    """The user's lease map holds fewer than `limit` leases."""
    LIVE = "live"
    """This session's lease is there (not released, not ended by a stop)."""


@dataclass(frozen=True)
class LeaseChange:
    """One session's lease, and the host record fields that move with it, as one write."""

    name: str
    user: str
    session_id: str
    guard: LeaseGuard
    limit: int = 0
    """For `ROOM`: the most leases a user may hold."""
    lease: SessionLease | None = None
    """Set this session's lease."""
    drop: bool = False
    """Remove this session's lease."""
    changes: Mapping[str, Value] = field(default_factory=dict)
    """Other host record fields → new value; None removes the attribute."""
    bump_generation: bool = False
    """Activity: a stop decided on the generation read before loses its conditional write."""

    def __post_init__(self) -> None:
        unknown = set(self.changes) - set(HostRecord.model_fields)
        if unknown:
            raise ValueError(f"{self.name}: not host record fields: {sorted(unknown)}")
        if self.guard is LeaseGuard.ROOM and self.limit < 1:
            raise ValueError(f"{self.name}: a ROOM guard needs a limit of at least 1")
        if self.guard is LeaseGuard.FIRST and (self.lease is None or self.drop):
            raise ValueError(f"{self.name}: a FIRST guard creates the user's map with a lease")


def open_lease(host: HostRecord, item: SessionItem, limit: int) -> LeaseChange | None:
    """The start request of session `item`, decided on `host` as read; None when the user
    already holds `limit` sessions.

    A start wants the instance running, counts as activity (it wins over a stop decided
    meanwhile) and clears the last start's error and message. The guard is the per-user
    limit, checked again by the write itself: a concurrent start of the same user that got
    there first makes this write fail, and the caller decides again on a fresh read.
    """
    held = host.sessions.get(item.user)
    if held is not None and len(held) >= limit:
        return None
    return LeaseChange(
        name="open_session",
        user=item.user,
        session_id=item.session_id,
        guard=LeaseGuard.FIRST if held is None else LeaseGuard.ROOM,
        limit=limit,
        lease=SessionLease(created_at=item.created_at, expires_at=item.expires_at),
        changes={
            "desired": "running",
            "last_start_request_at": item.created_at,
            "message": "",
            "error": None,
        },
        bump_generation=True,
    )


def open_attempts(limit: int) -> int:
    """How often a start decides and writes before it gives up. A race is lost mostly to
    another start of the same user, which then holds a lease, so after `limit + 1` rounds the
    limit answers; one spare round for a race lost to anything else (a stop clearing leases)."""
    return limit + 2


def keepalive(user: str, session_id: str, now: float) -> LeaseChange:
    """Keep running: activity that wins over a stop decided meanwhile; only a live session."""
    return LeaseChange(
        name="keepalive",
        user=user,
        session_id=session_id,
        guard=LeaseGuard.LIVE,
        changes={"last_keepalive_at": now},
        bump_generation=True,
    )


def release(user: str, session_id: str, now: float) -> LeaseChange:
    """Stop: the session lets go of the GPU. Not activity (the release grace starts now)."""
    return LeaseChange(
        name="release",
        user=user,
        session_id=session_id,
        guard=LeaseGuard.LIVE,
        drop=True,
        changes={"last_release_at": now},
    )
