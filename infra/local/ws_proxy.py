"""The local web front's socket router: what the CloudFront Function on `/ws/*` does in AWS.

A browser opens `/ws/{host}/inference` (`lambdas.domain.routing`); the router looks the host
up in the route table and forwards the socket to that host's origin as `/ws/inference`, the
backend's own path. An unknown host is refused at the handshake with 404 (CloudFront answers
so when the function finds no entry), an origin that cannot be reached with 502, and an
origin that refuses the handshake with its own status (the backend's 403, ...).

Once both sides are open, messages (text and binary) are relayed both ways, and the close
code and reason of whichever side closes first are passed on to the other (4401, 4429,
1001, ...). The browser's `Origin` and requested subprotocols go to the backend unchanged, so
its origin check holds as it does behind CloudFront.

Buffering is bounded, with backpressure rather than drops: the router keeps no queue of its
own; each direction awaits one message's send before it reads the next, so a slow receiver
stops the reads from its sender, whose socket buffers then fill and push back on TCP. What
the sockets themselves hold is bounded: `UPSTREAM_QUEUE` messages read from the host, and
uvicorn's own incoming queue on the browser's side; no message is larger than
`MAX_MESSAGE_BYTES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Origin, Subprotocol

from lambdas.domain.routing import BACKEND_PATH, host_of

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
"""uvicorn's own limit for what the browser sends (`ws_max_size`); the host's answers are
far smaller."""
UPSTREAM_QUEUE: Final = 16
"""Messages read from the host and not yet relayed; past that the router stops reading."""
OPEN_TIMEOUT_S: Final = 10.0
"""How long the host's handshake may take (the backend answers in milliseconds)."""
LOST: Final = (1011, "connection to the inference host lost")
"""Sent to the browser when the host's side drops without a close frame: 1006 cannot be
sent, and 1011 tells the engine to reconnect just the same."""

_NOT_SENDABLE: Final = frozenset({1005, 1006, 1015})
"""Close codes that only report (RFC 6455 §7.4.1): never sent in a close frame."""


class DenialNoise(logging.Filter):
    """Drops uvicorn's "ASGI callable returned without completing handshake." after a denial
    response: its sans-I/O WebSocket protocol sends the 404/502 but does not count it as a
    completed handshake, so every refused socket would log an error that is none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("ASGI callable returned without completing")


def relayable(code: int | None, reason: str | None) -> tuple[int, str]:
    """The close to send on, for the close one side received: the same code and reason,
    except the codes that only report what happened (no status, no close frame)."""
    if code is None or code in (1006, 1015):
        return LOST
    if code == 1005:
        return 1000, ""
    return code, reason or ""


def _client_close(code: int, reason: str) -> tuple[int, str]:
    """The close to send the host when the browser is gone: a vanished browser is going away."""
    if code == 1006:
        return 1001, "client went away"
    if code in _NOT_SENDABLE:
        return 1000, ""
    return code, reason


async def _deny(websocket: WebSocket, status: int, text: str) -> None:
    await websocket.send_denial_response(PlainTextResponse(text, status_code=status))


async def proxy_socket(websocket: WebSocket, origin_of: Callable[[str], str | None]) -> None:
    """Route one browser socket to its host (`origin_of(host)`: the route table's entry)."""
    host = host_of(websocket.url.path)
    origin = origin_of(host) if host else None
    if host is None or origin is None:
        await _deny(websocket, 404, f"no route for {websocket.url.path}")
        return
    query = websocket.url.query
    url = f"ws://{origin}{BACKEND_PATH}" + (f"?{query}" if query else "")
    browser_origin = websocket.headers.get("origin")
    client = websocket.client
    try:
        upstream = await connect(
            url,
            origin=Origin(browser_origin) if browser_origin else None,
            subprotocols=[Subprotocol(p) for p in websocket.scope.get("subprotocols", [])] or None,
            additional_headers={"X-Forwarded-For": client.host} if client else None,
            compression=None,  # the backend turns it off: frames are JPEG
            proxy=None,  # never an HTTP proxy from the environment: origins are local
            open_timeout=OPEN_TIMEOUT_S,
            max_size=MAX_MESSAGE_BYTES,
            max_queue=UPSTREAM_QUEUE,
            user_agent_header=websocket.headers.get("user-agent"),
        )
    except InvalidStatus as refused:
        status = refused.response.status_code
        log.info("host %s refused the socket: %d", host, status)
        await _deny(websocket, status, f"the inference host refused the connection ({status})")
        return
    except (OSError, TimeoutError, InvalidHandshake) as error:
        log.warning("host %s (%s) unreachable: %s", host, origin, error)
        await _deny(websocket, 502, "the inference host cannot be reached")
        return
    async with upstream:
        await websocket.accept(subprotocol=upstream.subprotocol)
        await _relay(websocket, upstream)


@dataclass(frozen=True)
class _Closed:
    """How a relay direction ended: which side closed, and (the browser's) code and reason."""

    by_browser: bool
    code: int = 1005
    reason: str = ""


async def _relay(browser: WebSocket, host: ClientConnection) -> None:
    to_host = asyncio.create_task(_browser_to_host(browser, host))
    to_browser = asyncio.create_task(_host_to_browser(browser, host))
    try:
        done, _ = await asyncio.wait({to_host, to_browser}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        to_host.cancel()
        to_browser.cancel()
    closed = (to_host if to_host in done else to_browser).result()
    if closed.by_browser:
        await host.close(*_client_close(closed.code, closed.reason))
        return
    # The host closed (or the connection to it dropped): close the browser's side the same way.
    await host.wait_closed()
    if browser.application_state == WebSocketState.CONNECTED:
        # The browser may go at the same moment.
        with contextlib.suppress(RuntimeError, OSError):
            await browser.close(*relayable(host.close_code, host.close_reason))


async def _browser_to_host(browser: WebSocket, host: ClientConnection) -> _Closed:
    while True:
        message = await browser.receive()
        if message["type"] == "websocket.disconnect":
            return _Closed(True, int(message.get("code") or 1005), str(message.get("reason") or ""))
        text, data = message.get("text"), message.get("bytes")
        try:
            await host.send(text if text is not None else data or b"")
        except ConnectionClosed:
            return _Closed(by_browser=False)


async def _host_to_browser(browser: WebSocket, host: ClientConnection) -> _Closed:
    try:
        async for message in host:
            if isinstance(message, str):
                await browser.send_text(message)
            else:
                await browser.send_bytes(message)
    except ConnectionClosed:
        pass
    except (WebSocketDisconnect, RuntimeError, OSError):
        return _Closed(by_browser=True, code=1006)
    return _Closed(by_browser=False)
