"""What the control API's session calls change: the lease a start request adds to the fleet
record, a keepalive, a release. Pure: each is a `Transition` that `lambdas.aws.store` applies
as one conditional write (or one transaction); `lambdas.control.plane` runs the calls.

The leases live in the fleet record (`sessions`: user → session id → lease) so that one
conditional write enforces the per-user limit, however many requests race for it. A start
request only adds the lease; reconcile places it on a host (`lambdas.domain.placement`).
"""

from __future__ import annotations

from lambdas.domain.actions import Transition, Update
from lambdas.domain.host_record import FLEET_KEY, FleetRecord, Lease, SessionItem, host_key


def open_lease(fleet: FleetRecord, item: SessionItem, limit: int) -> Transition | None:
    """The start request of session `item`, decided on `fleet` as read; None when the user
    already holds `limit` sessions.

    The guard is the per-user limit, checked again by the write itself: a concurrent start of
    the same user that got there first makes this write fail, and the caller decides again on
    a fresh read. Starts of different users touch different map entries and never conflict.
    """
    held = fleet.sessions.get(item.user)
    if held is not None and len(held) >= limit:
        return None
    lease = Lease(created_at=item.created_at, expires_at=item.expires_at).model_dump(
        exclude_none=True
    )
    user = ("sessions", item.user)
    if held is None:
        update = Update(
            key=FLEET_KEY,
            present=(("sessions",),),
            absent=(user,),
            set={user: {item.session_id: lease}, ("ended", item.user): None, ("error",): None},
        )
    else:
        update = Update(
            key=FLEET_KEY,
            smaller=((user, limit),),
            set={
                (*user, item.session_id): lease,
                ("ended", item.user): None,
                ("error",): None,
            },
        )
    return Transition("open_session", (update,))


def open_attempts(limit: int) -> int:
    """How often a start decides and writes before it gives up. A race is lost mostly to
    another start of the same user, which then holds a lease, so after `limit + 1` rounds the
    limit answers; one spare round for a race lost to anything else."""
    return limit + 2


def _live(user: str, session_id: str) -> tuple[str, ...]:
    return ("sessions", user, session_id)


def keepalive(user: str, session_id: str, host_id: str, now: float) -> Transition:
    """Keep running: activity on the session's host that wins over a stop decided meanwhile;
    only for a live session (the lease still there)."""
    return Transition(
        "keepalive",
        (
            Update(key=FLEET_KEY, present=(_live(user, session_id),)),
            Update(
                key=host_key(host_id),
                expect={"run_open": True},
                set={("last_keepalive_at",): now},
                add={"generation": 1},
            ),
        ),
    )


def release(user: str, session_id: str, host_id: str | None, now: float) -> Transition:
    """Stop: the session lets go of its host. Not activity (the release grace starts now)."""
    fleet = Update(
        key=FLEET_KEY, present=(_live(user, session_id),), set={_live(user, session_id): None}
    )
    if host_id is None:
        return Transition("release", (fleet,))
    host = Update(key=host_key(host_id), set={("last_release_at",): now})
    return Transition("release", (fleet, host))
