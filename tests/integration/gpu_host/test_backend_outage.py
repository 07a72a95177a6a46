"""Triton outages: injected by pointing at a dead port or cutting a relay in front of Triton."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from gpu_host.triton.local import LocalTriton
from infra.local.ports import free_port
from tests.integration.gpu_host.dataplane_support import (
    BackendFactory,
    FaultyTcpProxy,
    TextImage,
    TokenIssuer,
    frame,
    recv_json,
    say_hello,
    unique_user,
)
from tests.support.waiting import eventually_async

pytestmark = pytest.mark.triton


@pytest.fixture
def proxy(triton: LocalTriton) -> Iterator[FaultyTcpProxy]:
    relay = FaultyTcpProxy(triton.http_port)
    yield relay
    relay.close()


async def test_dead_triton_answers_unavailable_and_keeps_the_socket(
    start_backend: BackendFactory, token_issuer: TokenIssuer, text_image: TextImage
) -> None:
    """Given a backend whose Triton is not there, it is live but not ready, accepts sessions,
    and answers each frame with `unavailable` without closing the socket."""
    running = start_backend(triton_url=f"http://127.0.0.1:{free_port()}", wait_ready=False)
    assert running.get("/health") == (200, {"status": "ok"})
    status, body = running.get("/health/ready")
    assert status == 503
    assert body["models_loaded"] is False
    assert body["warmed_up"] is False
    async with websockets.connect(running.ws_url) as ws:
        assert (await say_hello(ws, token_issuer.token(unique_user())))["type"] == "ready"
        for frame_id in (1, 2, 3):
            await ws.send(frame(frame_id, text_image.jpeg))
            error = await recv_json(ws)
            assert (error["type"], error["code"], error["frame_id"]) == (
                "error",
                "unavailable",
                frame_id,
            )
    assert running.get("/health/ready")[0] == 503


async def test_outage_then_recovery_through_the_breaker(
    start_backend: BackendFactory,
    proxy: FaultyTcpProxy,
    token_issuer: TokenIssuer,
    text_image: TextImage,
) -> None:
    """Given a working session, when the link to Triton is cut, frames get `unavailable`
    and the breaker opens; when the link is back, the breaker's probe succeeds and frames get
    results again — on the same socket."""
    running = start_backend(triton_url=proxy.url)
    async with websockets.connect(running.ws_url) as ws:
        assert (await say_hello(ws, token_issuer.token(unique_user())))["type"] == "ready"
        await ws.send(frame(1, text_image.jpeg))
        assert (await recv_json(ws))["type"] == "result"

        proxy.cut()
        await ws.send(frame(2, text_image.jpeg))
        error = await recv_json(ws)
        assert (error["code"], error["frame_id"]) == ("unavailable", 2)
        assert running.state.gateway.breaker.state.value == "open"
        await ws.send(frame(3, text_image.jpeg))  # fails fast while open
        assert (await recv_json(ws))["code"] == "unavailable"

        proxy.restore()
        frame_ids = itertools.count(4)

        async def send_a_frame() -> dict[str, Any]:
            sent = next(frame_ids)
            await ws.send(frame(sent, text_image.jpeg))
            message = await recv_json(ws)
            assert message["frame_id"] == sent
            assert message["type"] == "result" or message["code"] == "unavailable", message
            return message

        message = await eventually_async(
            send_a_frame,
            lambda answer: answer["type"] == "result",
            what="a result once the link is back",
            timeout_s=20,
            interval_s=0.2,
        )
        assert message["detections"]
    assert running.state.gateway.breaker.state.value == "closed"
    assert running.get("/health/ready")[0] == 200
