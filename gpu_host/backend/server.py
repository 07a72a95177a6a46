"""Run the backend under uvicorn, closing sessions politely before uvicorn drops them.

uvicorn's shutdown fails open WebSockets with 1012 before the app's lifespan ends; our
protocol promises a `shutdown` notice and a 1001 close, so that happens first.
"""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from gpu_host.backend.context import Backend
from gpu_host.backend.settings import Settings

WS_SIZE_MARGIN = 64 * 1024
"""Messages a little over `max_frame_bytes` get our `frame_too_large` error; far bigger ones
are cut off by the WebSocket layer (1009) before they are buffered."""


class BackendServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop accepting first: where other workers share the listening socket, new
        # connections go to them instead of to one that is about to close them.
        for server in getattr(self, "servers", ()):
            server.close()
        app = self.config.app
        backend: Backend | None = getattr(getattr(app, "state", None), "backend", None)
        if backend is not None:
            await backend.sessions.shutdown_all()
        await super().shutdown(sockets)


def server_config(
    app: FastAPI, settings: Settings, *, host: str, port: int, log_level: str = "info"
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # websockets' Sans-I/O protocol: a message reaches the app through one queue put,
        # and reading pauses until the app has taken it (at most one message buffered per
        # socket). The legacy protocol ran a reader task per socket with its own queue:
        # an extra event-loop turn per frame (docs/performance.md).
        ws="websockets-sansio",
        ws_max_size=2 * settings.max_frame_bytes + WS_SIZE_MARGIN,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        # Frames are JPEG (deflate gains nothing) and results ~1 KB: compressing both ways
        # cost ≈0.1 ms of CPU per frame for no real saving.
        ws_per_message_deflate=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=5,
    )
