"""Open WebSocket sessions: the per-user limit, and who to notify at shutdown."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


class TooManySessionsError(Exception):
    """The user already has the maximum number of open sessions."""


@dataclass(frozen=True, slots=True)
class SessionHandle:
    id: str
    user: str
    models: tuple[str, ...]
    shutdown: Callable[[], Awaitable[None]]
    """Tells the client the server is going away and closes the socket (1001)."""


class SessionRegistry:
    def __init__(self, *, max_per_user: int) -> None:
        self._max_per_user = max_per_user
        self._sessions: dict[str, SessionHandle] = {}

    @property
    def count(self) -> int:
        return len(self._sessions)

    def held_by(self, user: str) -> int:
        """How many open sessions `user` has."""
        return sum(1 for s in self._sessions.values() if s.user == user)

    def open(
        self, *, user: str, models: tuple[str, ...], shutdown: Callable[[], Awaitable[None]]
    ) -> SessionHandle:
        """Register a session for `user`, or raise `TooManySessionsError`."""
        held = self.held_by(user)
        if held >= self._max_per_user:
            raise TooManySessionsError(
                f"user already has {held} open sessions (limit {self._max_per_user})"
            )
        handle = SessionHandle(id=uuid.uuid4().hex, user=user, models=models, shutdown=shutdown)
        self._sessions[handle.id] = handle
        return handle

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def shutdown_all(self) -> None:
        """Notify and close every open session (server shutdown)."""
        handles = list(self._sessions.values())
        if handles:
            log.info("closing %d sessions for shutdown", len(handles))
        await asyncio.gather(*(h.shutdown() for h in handles), return_exceptions=True)
