"""`/ws/inference` end to end: real backend, real tritonserver, real text detector."""

from __future__ import annotations

import asyncio
import json
import struct
import time
import urllib.request
from typing import Any

import pytest
import websockets
from websockets.typing import Origin

from gpu_host.backend.ws import SHUTDOWN_NOTICE
from gpu_host.triton.local import LocalTriton
from lambdas.domain.tickets import issue_ticket
from tests.contracts.protocol_cases import PROTOCOL_CASES
from tests.integration.gpu_host.dataplane_support import (
    TICKET_SECRET,
    BackendFactory,
    RunningBackend,
    TextImage,
    TokenIssuer,
    close_code,
    frame,
    overlap,
    plain_jpeg,
    recv_json,
    say_hello,
    unique_user,
)
from tests.support.waiting import eventually_async

pytestmark = pytest.mark.triton


async def open_session(
    backend: RunningBackend, issuer: TokenIssuer, user: str | None = None
) -> websockets.ClientConnection:
    ws = await websockets.connect(backend.ws_url, max_size=None)
    ready = await say_hello(ws, issuer.token(user or unique_user()), ["text"])
    assert ready["type"] == "ready", ready
    return ws


async def test_hello_gets_ready(backend: RunningBackend, token_issuer: TokenIssuer) -> None:
    async with websockets.connect(backend.ws_url) as ws:
        ready = await say_hello(ws, token_issuer.token(unique_user()))
    assert ready["type"] == "ready"
    assert ready["models"] == ["text"], "no hello models, no default served: all served"
    assert ready["max_frame_bytes"] == 300_000
    assert ready["max_frame_pixels"] == 1920 * 1080
    assert len(ready["session"]) == 32


async def test_rendered_text_is_detected_where_it_is(
    backend: RunningBackend, token_issuer: TokenIssuer, text_image: TextImage
) -> None:
    """Given a JPEG with big black text, the `text` model's boxes cover the ink."""
    ws = await open_session(backend, token_issuer)
    async with ws:
        await ws.send(frame(7, text_image.jpeg, capture_us=1_700_000_000_123_456))
        result = await recv_json(ws)
    assert result["type"] == "result", result
    assert (result["frame_id"], result["capture_us"]) == (7, 1_700_000_000_123_456)
    assert result["dropped"] == 0
    assert result["keypoints"] == []
    assert result["texts"] == []
    detections = result["detections"]
    assert detections, "no text found"
    assert {(d["model"], d["label"]) for d in detections} == {("text", "text")}
    assert all(0.5 <= d["score"] <= 1 for d in detections)
    for d in detections:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= 1
        assert 0 <= y1 < y2 <= 1
        assert overlap(text_image.box, d["box"]) > 0.5, "a box away from the text"
    covered = sum(overlap(d["box"], text_image.box) for d in detections)
    assert covered > 0.8, f"text only {covered:.0%} covered by {detections}"
    assert set(result["timing_ms"]) >= {
        "queue",
        "decode",
        "text.preprocess",
        "text.infer",
        "text.postprocess",
        "total",
    }


async def test_blank_frame_has_no_text(backend: RunningBackend, token_issuer: TokenIssuer) -> None:
    ws = await open_session(backend, token_issuer)
    async with ws:
        await ws.send(frame(1, plain_jpeg()))
        result = await recv_json(ws)
    assert result["type"] == "result"
    assert result["detections"] == []


def truncated_jpeg() -> bytes:
    jpeg = plain_jpeg(320, 240)
    return jpeg[: len(jpeg) // 2]


@pytest.mark.parametrize(
    ("payload", "frame_id"),
    [
        pytest.param(b"hello", None, id="shorter-than-header"),
        pytest.param(struct.pack("<4sIQ", b"XXXX", 5, 0) + b"\xff\xd8", None, id="bad-magic"),
        pytest.param(frame(5, b""), 5, id="no-payload"),
        pytest.param(frame(5, b"GIF89a not a jpeg"), 5, id="not-a-jpeg"),
        pytest.param(frame(5, b"\xff\xd8\xff" + bytes(40)), 5, id="garbage-after-soi"),
        pytest.param(frame(5, truncated_jpeg()), 5, id="truncated-undecodable"),
    ],
)
async def test_bad_frame_gets_an_error_and_the_next_frame_its_result(
    backend: RunningBackend,
    token_issuer: TokenIssuer,
    text_image: TextImage,
    payload: bytes,
    frame_id: int | None,
) -> None:
    ws = await open_session(backend, token_issuer)
    async with ws:
        await ws.send(payload)
        error = await recv_json(ws)
        assert error["type"] == "error"
        assert error["code"] == "bad_frame"
        assert error["message"]
        assert error.get("frame_id") == frame_id
        await ws.send(frame(6, text_image.jpeg))
        result = await recv_json(ws)
    assert result["type"] == "result"
    assert result["frame_id"] == 6
    assert result["detections"]


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose header claims another size (decoding it would fail)."""
    jpeg = bytearray(plain_jpeg(64, 48))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(jpeg)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(
            frame(9, b"\xff\xd8\xff" + bytes(300_000)), "bytes > max_frame_bytes", id="bytes"
        ),
        pytest.param(frame(9, jpeg_claiming(4000, 3000)), "4000×3000", id="pixels"),
    ],
)
async def test_oversized_frame_is_refused_before_decoding(
    backend: RunningBackend,
    token_issuer: TokenIssuer,
    text_image: TextImage,
    payload: bytes,
    message: str,
) -> None:
    """Neither payload would decode (zeros; a header lying about its size): getting
    `frame_too_large` rather than `bad_frame` shows the limit was checked first."""
    ws = await open_session(backend, token_issuer)
    async with ws:
        await ws.send(payload)
        error = await recv_json(ws)
        assert (error["type"], error["code"], error["frame_id"]) == ("error", "frame_too_large", 9)
        assert message in error["message"]
        await ws.send(frame(10, text_image.jpeg))
        assert (await recv_json(ws))["frame_id"] == 10


async def test_text_after_hello_is_a_bad_message(
    backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    ws = await open_session(backend, token_issuer)
    async with ws:
        await ws.send(json.dumps({"type": "hello"}))
        error = await recv_json(ws)
        assert (error["type"], error["code"]) == ("error", "bad_message")
        await ws.send(frame(1, plain_jpeg()))
        assert (await recv_json(ws))["type"] == "result"


async def test_a_burst_keeps_only_the_newest_frame_waiting(
    backend: RunningBackend, token_issuer: TokenIssuer, text_image: TextImage
) -> None:
    """Given 8 frames sent back to back, every frame is either inferred or counted as
    dropped, and the newest one is always inferred (newest wins)."""
    ws = await open_session(backend, token_issuer)
    sent = 8
    async with ws:
        for i in range(1, sent + 1):
            await ws.send(frame(i, text_image.jpeg))
        results: list[dict[str, Any]] = []
        while not results or results[-1]["frame_id"] != sent:
            results.append(await recv_json(ws))
    ids = [r["frame_id"] for r in results]
    assert ids == sorted(ids), "results come in frame order"
    assert len(results) + results[-1]["dropped"] == sent
    assert results[-1]["dropped"] > 0, "a CPU model cannot keep up with a burst"


async def test_bad_frames_do_not_count_as_dropped(
    backend: RunningBackend, token_issuer: TokenIssuer, blank_jpeg: bytes
) -> None:
    ws = await open_session(backend, token_issuer)
    async with ws:
        await ws.send(b"junk")
        await recv_json(ws)
        await ws.send(frame(1, blank_jpeg))
        assert (await recv_json(ws))["dropped"] == 0


async def test_sessions_share_one_client_and_triton_batches_them(
    backend: RunningBackend, token_issuer: TokenIssuer, text_image: TextImage, triton: LocalTriton
) -> None:
    """Given 4 sessions sending at once, each gets its own result and Triton runs fewer
    executions than requests: the dynamic batcher merged frames across sessions."""

    def counts() -> tuple[float, float]:
        metrics_url = f"http://{triton.host}:{triton.metrics_port}/metrics"
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            text = response.read().decode()
        values = {}
        for line in text.splitlines():
            for name in ("nv_inference_count", "nv_inference_exec_count"):
                if line.startswith(name + "{") and 'model="text"' in line:
                    values[name] = float(line.rsplit(" ", 1)[1])
        return values["nv_inference_count"], values["nv_inference_exec_count"]

    sockets = [await open_session(backend, token_issuer) for _ in range(4)]
    before = counts()
    for _round in range(3):
        await asyncio.gather(*(ws.send(frame(i, text_image.jpeg)) for i, ws in enumerate(sockets)))
        results = await asyncio.gather(*(recv_json(ws) for ws in sockets))
        assert [r["frame_id"] for r in results] == [0, 1, 2, 3]
    for ws in sockets:
        await ws.close()
    after = await eventually_async(  # Triton publishes its metrics periodically
        counts,
        lambda now: now[0] - before[0] >= 12,
        what=f"Triton's metrics count 12 inferences more than {before}",
        interval_s=0.2,
    )
    inferences, executions = after[0] - before[0], after[1] - before[1]
    assert inferences == 12
    assert executions < inferences


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="missing"),
        pytest.param("not-a-jwt", id="garbage"),
        pytest.param("expired", id="expired"),
        pytest.param("wrong-audience", id="wrong-audience"),
        pytest.param("wrong-issuer", id="wrong-issuer"),
        pytest.param("stranger-key", id="signed-by-another-key"),
        pytest.param("no-subject", id="no-subject"),
    ],
)
async def test_bad_token_closes_4401(
    backend: RunningBackend, token_issuer: TokenIssuer, token: str | None
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    tokens = {
        "expired": lambda: token_issuer.token(exp=1_600_000_000, iat=1_599_999_000),
        "wrong-audience": lambda: token_issuer.token(aud="someone-else"),
        "wrong-issuer": lambda: token_issuer.token(iss="https://evil.test"),
        "stranger-key": lambda: token_issuer.token(
            key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "no-subject": lambda: token_issuer.token(sub=None),
    }
    value = tokens[token]() if token in tokens else token
    async with websockets.connect(backend.ws_url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": value, "models": ["text"]}))
        assert await close_code(ws) == 4401


@pytest.mark.parametrize(
    "first_message",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[1,2]", id="not-an-object"),
        pytest.param('{"type":"frame"}', id="wrong-type"),
        pytest.param(b"SPF1binary first", id="binary-first"),
        pytest.param("MODELS:pose", id="unknown-model"),
        pytest.param("MODELS:", id="empty-models"),
    ],
)
async def test_bad_hello_closes_4400(
    backend: RunningBackend, token_issuer: TokenIssuer, first_message: str | bytes
) -> None:
    if isinstance(first_message, str) and first_message.startswith("MODELS:"):
        models = [m for m in first_message.removeprefix("MODELS:").split(",") if m]
        first_message = json.dumps(
            {"type": "hello", "token": token_issuer.token(unique_user()), "models": models}
        )
    async with websockets.connect(backend.ws_url) as ws:
        await ws.send(first_message)
        assert await close_code(ws) == 4400


async def test_per_user_session_limit_closes_4429(
    backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    user = unique_user()
    first = await open_session(backend, token_issuer, user)
    second = await open_session(backend, token_issuer, user)
    async with websockets.connect(backend.ws_url) as third:
        await say_hello_raw(third, token_issuer.token(user))
        assert await close_code(third) == 4429
    other = await open_session(backend, token_issuer)  # another user is not affected
    await first.close()
    await eventually_async(
        lambda: backend.state.sessions.held_by(user),
        lambda held: held == 1,
        what=f"the server counts one session of {user} after the close",
    )
    again = await open_session(backend, token_issuer, user)
    for ws in (second, other, again):
        await ws.close()


async def say_hello_raw(ws: websockets.ClientConnection, token: str) -> None:
    await ws.send(json.dumps({"type": "hello", "token": token}))


async def test_silent_client_is_closed_4408(
    start_backend: BackendFactory, triton: LocalTriton, token_issuer: TokenIssuer
) -> None:
    running = start_backend(triton_url=triton.http_url, hello_timeout_s=0.3)
    async with websockets.connect(running.ws_url) as ws:
        assert await close_code(ws) == 4408


async def test_origin_is_checked(
    start_backend: BackendFactory, triton: LocalTriton, token_issuer: TokenIssuer
) -> None:
    running = start_backend(triton_url=triton.http_url, allowed_origins="https://app.example")
    async with websockets.connect(running.ws_url, origin=Origin("https://evil.example")) as ws:
        assert await close_code(ws) == 4403
    async with websockets.connect(running.ws_url, origin=Origin("https://app.example")) as ws:
        assert (await say_hello(ws, token_issuer.token(unique_user())))["type"] == "ready"


def test_health_and_readiness(backend: RunningBackend) -> None:
    assert backend.get("/health") == (200, {"status": "ok"})
    status, body = backend.get("/health/ready")
    assert status == 200
    assert body["ready"]
    assert body["models_loaded"]
    assert body["warmed_up"]
    assert body["breaker"] == "closed"


async def test_metrics_count_frames_and_errors(
    backend: RunningBackend, token_issuer: TokenIssuer, blank_jpeg: bytes
) -> None:
    ws = await open_session(backend, token_issuer)
    async with ws:
        await ws.send(frame(1, blank_jpeg))
        await recv_json(ws)
        await ws.send(b"junk")
        await recv_json(ws)
    status, text = backend.get("/metrics")
    assert status == 200
    for name in (
        "spinup_active_sessions",
        "spinup_frames_received_total",
        "spinup_frames_dropped_total",
        "spinup_frames_inferred_total",
        'spinup_stage_seconds_bucket{le="0.001",model="text",stage="infer"}',
        'spinup_errors_total{code="bad_frame"}',
    ):
        assert name in text, name


async def test_shutdown_notifies_then_closes_1001(
    start_backend: BackendFactory, triton: LocalTriton, token_issuer: TokenIssuer
) -> None:
    running = start_backend(triton_url=triton.http_url)
    ws = await websockets.connect(running.ws_url)
    await say_hello(ws, token_issuer.token(unique_user()))
    stopping = asyncio.get_running_loop().run_in_executor(None, running.stop)
    notice = await recv_json(ws)
    assert notice == {"type": "notice", "kind": "shutdown", "message": SHUTDOWN_NOTICE}
    assert await close_code(ws) == 1001
    await stopping


def _with_credentials(value: Any, *, token: str, ticket: str) -> Any:
    """The case's hello with `<token>` and `<ticket>` replaced by valid ones."""
    if value == "<token>":
        return token
    if value == "<ticket>":
        return ticket
    if isinstance(value, dict):
        return {
            key: _with_credentials(item, token=token, ticket=ticket) for key, item in value.items()
        }
    return value


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=case["name"]) for case in PROTOCOL_CASES["hellos"]],
)
async def test_the_shared_hello_cases_get_their_answer(
    backend: RunningBackend, token_issuer: TokenIssuer, case: dict[str, Any]
) -> None:
    """Every hello of tests/contracts/protocol_cases.json, against the real backend: `ready`
    with the case's models, or a close with the case's code."""
    assert list(backend.settings.models) == PROTOCOL_CASES["served_models"]
    user = unique_user()
    token = token_issuer.token(user)
    ticket = issue_ticket(
        TICKET_SECRET,
        user=user,
        session_id="c" * 32,
        host_id=backend.settings.host_id,
        now=time.time(),
    ).token
    wire = _with_credentials(case.get("wire"), token=token, ticket=ticket)
    text = case["text"] if "text" in case else json.dumps(wire)
    async with websockets.connect(backend.ws_url) as ws:
        await ws.send(text)
        if case["close"] is None:
            ready = await recv_json(ws)
            assert (ready["type"], ready["models"]) == ("ready", case["models"])
        else:
            assert await close_code(ws) == case["close"]
