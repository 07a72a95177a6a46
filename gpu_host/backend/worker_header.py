"""Says which worker process answered: `X-Spinup-Worker: <pid>` on every HTTP response and
WebSocket handshake of the backend.

With several workers on one port the kernel hands each connection to one of them; an
operator (`curl -i …/health/ready`) and the tests (which worker holds a socket, whose pid to
signal) read it here. nginx hides it from the public (gpu_host/bootstrap/nginx-site.conf).
"""

from __future__ import annotations

import os
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER: Final = "x-spinup-worker"


def worker_header() -> tuple[bytes, bytes]:
    """The header as ASGI carries it. Read when used, not at import: a forked worker must
    not say its parent's pid."""
    return HEADER.encode(), str(os.getpid()).encode()


class WorkerHeader:
    """ASGI middleware adding the header to HTTP responses. The WebSocket route adds it to
    its handshake itself (`accept(headers=…)`): a middleware would wrap every message the
    socket sends, the frame path included."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        header = worker_header()

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self._app(scope, receive, send_with_header)
