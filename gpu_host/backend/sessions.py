"""Open WebSocket sessions: admitted host-wide (the per-user limit holds across the workers,
through the host store), and this worker's own, to notify at shutdown."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gpu_host.backend.host_store import HostStore, TooManySessionsError

__all__ = ["SessionHandle", "SessionRegistry", "TooManySessionsError"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionHandle:
    id: str
    user: str
    models: tuple[str, ...]
    shutdown: Callable[[], Awaitable[None]]
    """Tells the client the server is going away and closes the socket (1001)."""


class SessionRegistry:
    """Admits sessions through the host store (SQLite: its calls run off the event loop)
    and keeps this worker's handles."""

    def __init__(self, *, store: HostStore, max_per_user: int) -> None:
        self._store = store
        self._max_per_user = max_per_user
        self._sessions: dict[str, SessionHandle] = {}

    @property
    def local_count(self) -> int:
        """Open sessions of this worker."""
        return len(self._sessions)

    async def count(self) -> int:
        """Open sessions of the host, every worker's."""
        return await asyncio.to_thread(self._store.session_count)

    async def held_by(self, user: str) -> int:
        """How many open sessions `user` has on the host."""
        return await asyncio.to_thread(self._store.sessions_of, user)

    async def open(
        self,
        *,
        user: str,
        models: tuple[str, ...],
        shutdown: Callable[[], Awaitable[None]],
        uses: tuple[str, ...] = (),
    ) -> SessionHandle:
        """Register a session for `user`, or raise `TooManySessionsError`. `uses`: the models
        its frames run besides `models` (the regions' sources): in use, so never unloaded."""
        handle = SessionHandle(id=uuid.uuid4().hex, user=user, models=models, shutdown=shutdown)
        await asyncio.to_thread(
            self._store.admit,
            session_id=handle.id,
            user=user,
            models=models + uses,
            max_per_user=self._max_per_user,
        )
        self._sessions[handle.id] = handle
        return handle

    async def close(self, session_id: str) -> None:
        if self._sessions.pop(session_id, None) is not None:
            await asyncio.to_thread(self._store.release, session_id)

    async def shutdown_all(self) -> None:
        """Notify and close every open session of this worker (server shutdown)."""
        handles = list(self._sessions.values())
        if handles:
            log.info("closing %d sessions for shutdown", len(handles))
        await asyncio.gather(*(h.shutdown() for h in handles), return_exceptions=True)
