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
from lambdas.domain.host_record import FleetRecord, Lease, SessionItem
from lambdas.domain.model import Snapshot
from lambdas.domain.status import SessionStatus, session_status, user_status
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
        status = user_status(self._reconcile(now), self.settings, now, user)
        return StatusResponse(
            phase=status.phase,
            instance_state=status.instance_state,
            ws_url=status.ws_url,
            eta_s=status.eta_s,
            stop_at=status.stop_at,
            message=status.message,
            sessions=[_session_info(session) for session in status.sessions],
            start_phases=status.start_phases,
        )

    def open_session(self, user: str) -> SessionCreated:
        """A start request: a session for `user`, waiting for reconcile to place it."""
        now = self.clock()
        self._refuse_start(self.clients.store.load_fleet(), user, now)
        item = SessionItem(
            session_id=uuid.uuid4().hex,
            user=user,
            created_at=now,
            expires_at=now + self.settings.max_run_s,
        )
        if not self._record_start(item):
            self._refuse_start(self.clients.store.load_fleet(), user, now)
            raise TooManyRequestsError(self._limit_text([]))
        phase = self._session_after_reconcile(user, item.session_id).phase
        return SessionCreated(session_id=item.session_id, phase=phase, status_url=STATUS_URL)

    def keepalive(self, user: str, session_id: str) -> KeepaliveResponse:
        """Keep running: counts as activity on the session's host and wins over a stop
        decided meanwhile."""
        self._live_item(user, session_id)
        lease = self._lease(user, session_id)
        if lease.host_id is not None:
            change = leases.keepalive(user, session_id, lease.host_id, self.clock())
            if not self.clients.store.apply(change):
                raise ConflictError(self._ended_text(session_id))
        session = self._session_after_reconcile(user, session_id)
        return KeepaliveResponse(
            session_id=session_id, phase=session.phase, stop_at=session.stop_at
        )

    def ticket(self, user: str, session_id: str) -> TicketResponse:
        """A socket ticket for the hello of one WebSocket to the session's host.

        No write and no reconcile: asking for a ticket is not activity (frames are)."""
        self._live_item(user, session_id)
        now = self.clock()
        lease = self._lease(user, session_id)
        if lease.expires_at <= now:
            raise ConflictError(self._ended_text(session_id))
        host = None if lease.host_id is None else self.clients.store.load_host(lease.host_id)
        if host is None or host.ready_this_run is None:
            raise ConflictError(
                f"Session {session_id}'s GPU host is not ready yet; ask again once "
                "GET /api/status says it is."
            )
        secret = self.settings.ticket_secret
        ws_url = self.settings.ws_url_for(host.host_id)
        if secret is None or not ws_url:
            raise UnavailableError(
                "Socket tickets are not configured here (SPINUP_TICKET_SECRET and "
                "SPINUP_WS_BASE_URL); ask the operator."
            )
        issued = issue_ticket(
            secret.get_secret_value(),
            user=user,
            session_id=session_id,
            host_id=host.host_id,
            now=now,
            ttl_s=self.settings.ticket_ttl_s,
        )
        return TicketResponse(ticket=issued.token, ws_url=ws_url, expires_at=issued.expires_at)

    def release(self, user: str, session_id: str) -> ReleaseResponse:
        """Stop: the session lets go; its host leaves RELEASE_GRACE_S after its last one."""
        item = self._own_session(user, session_id)
        if item.released_at is None:
            now = self.clock()
            lease = self.clients.store.load_fleet().sessions_of(user).get(session_id)
            if lease is not None:
                self.clients.store.apply(leases.release(user, session_id, lease.host_id, now))
            self.clients.store.mark_released(session_id, now)
        now = self.clock()
        status = user_status(self._reconcile(now), self.settings, now, user)
        return ReleaseResponse(session_id=session_id, phase=status.phase)

    def _record_start(self, item: SessionItem) -> bool:
        """Record a start request with its session, unless the user already holds the most
        sessions allowed (then False).

        The session item is written first; the lease in the fleet record, added by one
        conditional update, is what makes the session open. A refused item is deleted again
        (one left behind by a crash is harmless: without its lease the session reads as ended).
        Each round decides on a fresh read; a lost race decides again, a bounded number of times.
        """
        store = self.clients.store
        limit = self.settings.max_sessions_per_user
        store.put_session(item)
        for _ in range(leases.open_attempts(limit)):
            change = leases.open_lease(store.load_fleet(), item, limit)
            if change is None:
                store.delete_session(item.session_id)
                return False
            if store.apply(change):
                return True
        store.delete_session(item.session_id)
        raise UnavailableError("Many requests changed the same state at once; retry.")

    def _reconcile(self, now: float) -> Snapshot:
        """Reconcile, as every call does. The call's own write has already happened, so a
        failing AWS call must not fail it: the schedule reconciles again within a minute."""
        try:
            return reconcile_once(self.settings, self.clients, now).after
        except (ClientError, BotoCoreError):
            log.exception("reconcile failed; answering from the current state")
            return read_snapshot(self.clients)

    def _session_after_reconcile(self, user: str, session_id: str) -> SessionStatus:
        now = self.clock()
        snapshot = self._reconcile(now)
        lease = snapshot.fleet.sessions_of(user).get(session_id)
        if lease is None:
            raise ConflictError(self._ended_text(session_id))
        return session_status(snapshot, self.settings, now, session_id, lease)

    def _own_session(self, user: str, session_id: str) -> SessionItem:
        item = self.clients.store.get_session(session_id)
        if item is None:
            raise NotFoundError(
                f"No session {session_id}. GET /api/status lists your open sessions."
            )
        if item.user != user:
            raise ForbiddenError(f"Session {session_id} belongs to another user.")
        return item

    def _live_item(self, user: str, session_id: str) -> SessionItem:
        item = self._own_session(user, session_id)
        if item.released_at is not None:
            raise ConflictError(
                f"Session {session_id} was released; open a new one with POST /api/sessions."
            )
        return item

    def _lease(self, user: str, session_id: str) -> Lease:
        lease = self.clients.store.load_fleet().sessions_of(user).get(session_id)
        if lease is None:
            raise ConflictError(self._ended_text(session_id))
        return lease

    @staticmethod
    def _ended_text(session_id: str) -> str:
        return (
            f"Session {session_id} ended when its GPU host stopped; "
            "open a new one with POST /api/sessions."
        )

    def _refuse_start(self, fleet: FleetRecord, user: str, now: float) -> None:
        refusal = budget.refusal(fleet, self.settings, now)
        if refusal is not None:
            raise TooManyRequestsError(refusal)
        held = sorted(fleet.sessions_of(user))
        if len(held) >= self.settings.max_sessions_per_user:
            raise TooManyRequestsError(self._limit_text(held))

    def _limit_text(self, held: list[str]) -> str:
        which = f" ({', '.join(held)})" if held else ""
        return (
            f"You already have {self.settings.max_sessions_per_user} open sessions{which}, "
            "the most one user may hold. Release one with DELETE /api/sessions/{id}, "
            "or reuse it (GET /api/status lists them)."
        )


def _session_info(session: SessionStatus) -> SessionInfo:
    return SessionInfo(
        session_id=session.session_id,
        created_at=session.created_at,
        expires_at=session.expires_at,
        host_id=session.host_id,
        phase=session.phase,
        ws_url=session.ws_url,
    )
