"""What each control API call does: check the request against the rules, record it, reconcile.

Every call ends with a reconcile, so the answer reflects what the call caused (a start, a stop
that became due). Status polls change nothing but what reconcile would do anyway: they are
never activity.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.aws.clients import Clients
from lambdas.control.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    TooManyRequestsError,
    UnavailableError,
)
from lambdas.control.schemas import (
    KeepaliveResponse,
    ReleaseResponse,
    SessionCreated,
    SessionInfo,
    StatusResponse,
    TicketResponse,
)
from lambdas.domain import budget, leases
from lambdas.domain.decide import missing_instance_message
from lambdas.domain.host_record import SessionItem
from lambdas.domain.model import Snapshot
from lambdas.domain.status import HostStatus, host_status
from lambdas.domain.tickets import issue_ticket
from lambdas.reconcile.service import read_snapshot, reconcile_once
from lambdas.settings import Settings

log = logging.getLogger(__name__)

STATUS_URL = "/api/status"


class ControlPlane:
    def __init__(self, settings: Settings, clients: Clients, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clients = clients
        self.clock = clock

    def status(self, user: str) -> StatusResponse:
        now = self.clock()
        snapshot = self._reconcile(now)
        status = host_status(snapshot, self.settings, now)
        return StatusResponse(
            phase=status.phase,
            instance_state=status.instance_state,
            ws_url=self.settings.ws_url or None,
            eta_s=status.eta_s,
            stop_at=status.stop_at,
            message=status.message,
            sessions=_open_sessions(snapshot, user, now),
        )

    def open_session(self, user: str) -> SessionCreated:
        """A start request: a session for `user`, and the instance wanted running."""
        now = self.clock()
        snapshot = read_snapshot(self.clients)
        self._refuse_start(snapshot, user, now)
        item = SessionItem(
            session_id=uuid.uuid4().hex,
            user=user,
            created_at=now,
            expires_at=now + self.settings.max_run_s,
        )
        if not self._record_start(item):
            self._refuse_start(read_snapshot(self.clients), user, now)
            raise TooManyRequestsError(self._limit_text([]))
        status = self._status_after_reconcile()
        return SessionCreated(session_id=item.session_id, phase=status.phase, status_url=STATUS_URL)

    def keepalive(self, user: str, session_id: str) -> KeepaliveResponse:
        """Keep running: counts as activity and wins over a stop decided meanwhile."""
        item = self._own_session(user, session_id)
        if item.released_at is not None:
            raise ConflictError(
                f"Session {session_id} was released; open a new one with POST /api/sessions."
            )
        if not self.clients.store.apply_lease(leases.keepalive(user, session_id, self.clock())):
            raise ConflictError(
                f"Session {session_id} ended when the instance stopped; "
                "open a new one with POST /api/sessions."
            )
        status = self._status_after_reconcile()
        return KeepaliveResponse(session_id=session_id, phase=status.phase, stop_at=status.stop_at)

    def ticket(self, user: str, session_id: str) -> TicketResponse:
        """A socket ticket for the hello of one WebSocket to the session's host.

        No write and no reconcile: asking for a ticket is not activity (frames are)."""
        item = self._own_session(user, session_id)
        if item.released_at is not None:
            raise ConflictError(
                f"Session {session_id} was released; open a new one with POST /api/sessions."
            )
        now = self.clock()
        host = self.clients.store.load_host()
        lease = host.sessions_of(user).get(session_id)
        if lease is None or lease.expires_at <= now:
            raise ConflictError(
                f"Session {session_id} ended when the instance stopped; "
                "open a new one with POST /api/sessions."
            )
        secret = self.settings.ticket_secret
        if secret is None or not self.settings.ws_url:
            raise UnavailableError(
                "Socket tickets are not configured here (SPINUP_TICKET_SECRET and "
                "SPINUP_WS_URL); ask the operator."
            )
        issued = issue_ticket(
            secret.get_secret_value(),
            user=user,
            session_id=session_id,
            host_id=host.host_id,
            now=now,
            ttl_s=self.settings.ticket_ttl_s,
        )
        return TicketResponse(
            ticket=issued.token, ws_url=self.settings.ws_url, expires_at=issued.expires_at
        )

    def release(self, user: str, session_id: str) -> ReleaseResponse:
        """Stop: the session lets go; the instance stops RELEASE_GRACE_S after the last one."""
        item = self._own_session(user, session_id)
        if item.released_at is None:
            now = self.clock()
            self.clients.store.apply_lease(leases.release(user, session_id, now))
            self.clients.store.mark_released(session_id, now)
        status = self._status_after_reconcile()
        return ReleaseResponse(session_id=session_id, phase=status.phase)

    def _record_start(self, item: SessionItem) -> bool:
        """Record a start request with its session, unless the user already holds the most
        sessions allowed (then False).

        The session item is written first; the lease in the host record, added by one
        conditional update, is what makes the session open. A refused item is deleted again
        (one left behind by a crash is harmless: without its lease the session reads as ended).
        Each round decides on a fresh read; a lost race decides again, a bounded number of times.
        """
        store = self.clients.store
        limit = self.settings.max_sessions_per_user
        store.put_session(item)
        for _ in range(leases.open_attempts(limit)):
            change = leases.open_lease(store.load_host(), item, limit)
            if change is None:
                store.delete_session(item.session_id)
                return False
            if store.apply_lease(change):
                return True
        store.delete_session(item.session_id)
        raise UnavailableError("Many requests changed the same state at once; retry.")

    def _reconcile(self, now: float) -> Snapshot:
        """Reconcile, as every call does. The call's own write has already happened, so a
        failing EC2 call must not fail it: the schedule reconciles again within a minute."""
        try:
            return reconcile_once(self.settings, self.clients, now).after
        except (ClientError, BotoCoreError):
            log.exception("reconcile failed; answering from the current state")
            return read_snapshot(self.clients)

    def _status_after_reconcile(self) -> HostStatus:
        now = self.clock()
        return host_status(self._reconcile(now), self.settings, now)

    def _own_session(self, user: str, session_id: str) -> SessionItem:
        item = self.clients.store.get_session(session_id)
        if item is None:
            raise NotFoundError(
                f"No session {session_id}. GET /api/status lists your open sessions."
            )
        if item.user != user:
            raise ForbiddenError(f"Session {session_id} belongs to another user.")
        return item

    def _refuse_start(self, snapshot: Snapshot, user: str, now: float) -> None:
        instance = snapshot.instance
        if instance is None or instance.state in ("shutting-down", "terminated"):
            raise UnavailableError(missing_instance_message(instance, self.settings))
        refusal = budget.refusal(snapshot.host, self.settings, now)
        if refusal is not None:
            raise TooManyRequestsError(refusal)
        held = sorted(snapshot.host.sessions_of(user))
        if len(held) >= self.settings.max_sessions_per_user:
            raise TooManyRequestsError(self._limit_text(held))

    def _limit_text(self, held: list[str]) -> str:
        which = f" ({', '.join(held)})" if held else ""
        return (
            f"You already have {self.settings.max_sessions_per_user} open sessions{which}, "
            "the most one user may hold. Release one with DELETE /api/sessions/{id}, "
            "or reuse it (GET /api/status lists them)."
        )


def _open_sessions(snapshot: Snapshot, user: str, now: float) -> list[SessionInfo]:
    leases = snapshot.host.sessions_of(user)
    return [
        SessionInfo(session_id=sid, created_at=lease.created_at, expires_at=lease.expires_at)
        for sid, lease in sorted(leases.items(), key=lambda pair: pair[1].created_at)
        if lease.expires_at > now
    ]
