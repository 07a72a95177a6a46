"""The local web front routes sockets as the CloudFront Function does: `/ws/{host}/inference`
to the host's origin as `/ws/inference`, messages and closes relayed both ways.

The front runs under a real uvicorn (the handshake refusals need its WebSocket denial
responses); the host is a backend-like websockets server that echoes and closes on request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response
from websockets.typing import Origin, Subprotocol

from infra.local.ports import free_port
from infra.local.routes import LocalRoutes
from infra.local.web import add_local_routes, front_config
from infra.local.ws_proxy import LOST, DenialNoise, relayable
from lambdas.domain.routing import routed_path
from tests.support.waiting import eventually_async

UI = "http://127.0.0.1:8000"
HOST = "i-0123456789abcdef0"
PROTOCOL = Subprotocol("spinup.v1")


@dataclass
class Upstream:
    """The backend-like host: echoes; `close CODE REASON` closes so; `drop` drops the TCP
    connection without a close frame."""

    origin: str = ""
    handshakes: list[dict[str, Any]] = field(default_factory=list)
    closes: list[tuple[int | None, str | None]] = field(default_factory=list)

    async def handler(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        self.handshakes.append(
            {
                "path": request.path,
                "origin": request.headers.get("Origin"),
                "forwarded_for": request.headers.get("X-Forwarded-For"),
                "subprotocol": ws.subprotocol,
            }
        )
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith("close "):
                    _, code, reason = message.split(" ", 2)
                    await ws.close(int(code), reason)
                elif message == "drop":
                    ws.transport.abort()
                else:
                    await ws.send(message)
        except ConnectionClosed:
            pass
        self.closes.append((ws.close_code, ws.close_reason))

    def refuse_strangers(self, _: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Origin") == "http://evil.example":
            return Response(403, "Forbidden", Headers(), b"origin not allowed")
        return None


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    made = Upstream()
    port = free_port()
    async with serve(
        made.handler,
        "127.0.0.1",
        port,
        subprotocols=[PROTOCOL],
        process_request=made.refuse_strangers,
        compression=None,
    ):
        made.origin = f"127.0.0.1:{port}"
        yield made


@pytest.fixture
def routes(upstream: Upstream) -> LocalRoutes:
    table = LocalRoutes()
    table.put(HOST, upstream.origin)
    return table


@pytest.fixture
async def front(routes: LocalRoutes, tmp_path: Path) -> AsyncIterator[str]:
    """The local web front on a free port; its ws:// base."""
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>")
    app = add_local_routes(
        FastAPI(),
        frontend_dir=tmp_path,
        config={},
        jwks={},
        csp="default-src 'self'",
        routes=routes,
    )
    port = free_port()
    server = uvicorn.Server(front_config(app, host="127.0.0.1", port=port, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await eventually_async(lambda: server.started, what="the web front serves")
    yield f"ws://127.0.0.1:{port}"
    server.should_exit = True
    await serving


@contextlib.asynccontextmanager
async def browser(
    url: str, *, origin: str = UI, subprotocols: list[Subprotocol] | None = None
) -> AsyncIterator[ClientConnection]:
    async with connect(
        url,
        origin=Origin(origin),
        subprotocols=subprotocols or [PROTOCOL],
        proxy=None,
        open_timeout=5,
    ) as ws:
        yield ws


async def test_messages_are_relayed_both_ways_to_the_backends_path(
    front: str, upstream: Upstream
) -> None:
    async with browser(f"{front}{routed_path(HOST)}?v=1") as ws:
        assert ws.subprotocol == PROTOCOL
        await ws.send('{"type": "hello"}')
        assert await ws.recv() == '{"type": "hello"}'
        frame = bytes(range(256)) * 4096
        await ws.send(frame)
        assert await ws.recv() == frame
    assert upstream.handshakes == [
        {
            "path": "/ws/inference?v=1",
            "origin": UI,
            "forwarded_for": "127.0.0.1",
            "subprotocol": PROTOCOL,
        }
    ]


async def test_a_compression_offer_is_refused_as_the_backend_refuses_it(front: str) -> None:
    # Given a browser that offers permessage-deflate, as Chromium and websockets do
    async with browser(f"{front}{routed_path(HOST)}") as ws:
        assert ws.request is not None
        assert ws.response is not None
        assert ws.request.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        # Then the front accepts no extension (in AWS the backend answers, and refuses):
        # frames travel as sent, and are still relayed
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []
        frame = bytes(range(256)) * 64
        await ws.send(frame)
        assert await ws.recv() == frame


@pytest.mark.parametrize(
    ("code", "reason"),
    [(4401, "ticket expired"), (4429, "too many sessions"), (1001, "server shutting down")],
)
async def test_the_hosts_close_reaches_the_browser(front: str, code: int, reason: str) -> None:
    async with browser(f"{front}{routed_path(HOST)}") as ws:
        await ws.send(f"close {code} {reason}")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (code, reason)


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4000, "user pressed stop")])
async def test_the_browsers_close_reaches_the_host(
    front: str, upstream: Upstream, code: int, reason: str
) -> None:
    async with browser(f"{front}{routed_path(HOST)}") as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
        await ws.close(code, reason)
    await eventually_async(
        lambda: upstream.closes, lambda closes: closes == [(code, reason)], what="host closed"
    )


async def test_a_host_that_drops_the_connection_is_lost_for_the_browser(front: str) -> None:
    async with browser(f"{front}{routed_path(HOST)}") as ws:
        await ws.send("drop")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == LOST


@pytest.mark.parametrize(
    ("path", "origin", "status"),
    [
        (routed_path("i-0unknown"), UI, 404),
        ("/ws/inference", UI, 404),
        (f"/ws/{HOST}/other", UI, 404),
        (routed_path("i-0dead"), UI, 502),
        (routed_path(HOST), "http://evil.example", 403),
    ],
    ids=["unknown host", "no host", "not the inference path", "dead origin", "host refuses"],
)
async def test_the_handshake_is_refused_as_cloudfront_would(
    front: str, routes: LocalRoutes, path: str, origin: str, status: int
) -> None:
    routes.put("i-0dead", f"127.0.0.1:{free_port()}")
    with pytest.raises(InvalidStatus) as refused:
        async with browser(f"{front}{path}", origin=origin):
            pass
    assert refused.value.response.status_code == status


async def test_a_route_deleted_refuses_new_sockets(front: str, routes: LocalRoutes) -> None:
    async with browser(f"{front}{routed_path(HOST)}") as ws:
        routes.delete(HOST)
        await ws.send("still here")
        assert await ws.recv() == "still here", "an open socket stays with its host"
    with pytest.raises(InvalidStatus):
        async with browser(f"{front}{routed_path(HOST)}"):
            pass


@pytest.mark.parametrize(
    ("code", "reason", "sent"),
    [
        (4401, "expired", (4401, "expired")),
        (1001, None, (1001, "")),
        (1005, None, (1000, "")),
        (1006, None, LOST),
        (None, None, LOST),
    ],
)
def test_relayable_close_codes(code: int | None, reason: str | None, sent: tuple[int, str]) -> None:
    assert relayable(code, reason) == sent


def test_refusals_do_not_log_uvicorns_false_handshake_error() -> None:
    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, message, (), None)

    noise = DenialNoise()
    assert not noise.filter(record("ASGI callable returned without completing handshake."))
    assert noise.filter(record("Exception in ASGI application"))
