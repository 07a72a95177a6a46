"""Models loaded on demand, end to end: a real tritonserver with explicit model control
(loading `face` and `text` at start, as the local supervisor would for those defaults) and
real backends. A hello naming an unloaded model gets a `loading` notice, then `ready`, then
results; the model budget unloads the least recently used idle model and never a busy one;
sessions asking at once (on two workers sharing the host store) load a model once; a load
that fails (its directory taken out of Triton's repository: an injected fault) closes the
socket with the reason, and nothing else breaks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from gpu_host.backend.protocol import CloseCode
from gpu_host.triton.local import LocalTriton
from tests.integration.gpu_host.dataplane_support import (
    BackendFactory,
    RunningBackend,
    TokenIssuer,
    frame,
    plain_jpeg,
    recv_json,
    running_triton,
    say_hello,
    unique_user,
)

pytestmark = pytest.mark.triton

DEFAULTS = ("face", "text")
SERVED = (*DEFAULTS, "detect", "pose", "ocr")


@pytest.fixture
def triton(tmp_path: Path) -> Iterator[LocalTriton]:
    """A Triton of its own per test: which models it holds is what these tests change."""
    with running_triton(
        tmp_path / "triton", models=SERVED, load_models=DEFAULTS, user_models=None
    ) as server:
        yield server


def start(
    start_backend: BackendFactory, triton: LocalTriton, state_dir: Path, **overrides: Any
) -> RunningBackend:
    return start_backend(
        triton_url=triton.http_url,
        models=SERVED,
        default_models=DEFAULTS,
        state_dir=state_dir,
        **overrides,
    )


def loads_of(triton: LocalTriton, model: str) -> int:
    """How many times Triton loaded `model` (its log says each)."""
    return triton.log_path.read_text(errors="replace").count(f"successfully loaded '{model}'")


async def open_session(
    backend: RunningBackend, issuer: TokenIssuer, models: list[str]
) -> tuple[websockets.ClientConnection, list[dict[str, Any]]]:
    """A session of `models`: the socket, and the messages up to `ready` (included)."""
    ws = await websockets.connect(backend.ws_url)
    seen = [await say_hello(ws, issuer.token(unique_user()), models)]
    while seen[-1]["type"] == "notice":
        seen.append(await recv_json(ws, wait_s=60))
    return ws, seen


async def refused(
    backend: RunningBackend, issuer: TokenIssuer, models: list[str]
) -> tuple[list[dict[str, Any]], int | None, str]:
    """A hello the server closes: the messages before the close, its code and reason."""
    seen: list[dict[str, Any]] = []
    async with websockets.connect(backend.ws_url) as ws:
        try:
            seen.append(await say_hello(ws, issuer.token(unique_user()), models))
            while True:
                seen.append(await recv_json(ws, wait_s=60))
        except websockets.ConnectionClosed as closed:
            close = closed.rcvd
    return seen, None if close is None else close.code, "" if close is None else close.reason


async def a_result(ws: websockets.ClientConnection, frame_id: int = 1) -> dict[str, Any]:
    await ws.send(frame(frame_id, plain_jpeg()))
    result = await recv_json(ws, wait_s=30)
    assert (result["type"], result["frame_id"]) == ("result", frame_id), result
    return result


async def test_an_unloaded_model_is_announced_loaded_then_serves(
    start_backend: BackendFactory, triton: LocalTriton, token_issuer: TokenIssuer, tmp_path: Path
) -> None:
    backend = start(start_backend, triton, tmp_path / "state")
    status, body = backend.get("/health/ready")
    assert status == 200
    assert body["startup_models"] == list(DEFAULTS)
    assert sorted(body["loaded"]) == sorted(DEFAULTS)
    # A default model: no notice.
    ws, seen = await open_session(backend, token_issuer, ["face"])
    assert [m["type"] for m in seen] == ["ready"]
    await ws.close()

    ws, seen = await open_session(backend, token_issuer, ["detect"])
    assert [(m["type"], m.get("kind")) for m in seen] == [("notice", "loading"), ("ready", None)]
    assert "detect" in seen[0]["message"]
    await a_result(ws)
    await ws.close()
    assert sorted(backend.get("/health/ready")[1]["loaded"]) == sorted([*DEFAULTS, "detect"])
    assert loads_of(triton, "detect") == 1


async def test_the_budget_unloads_the_least_recently_used_idle_model_never_a_busy_one(
    start_backend: BackendFactory, triton: LocalTriton, token_issuer: TokenIssuer, tmp_path: Path
) -> None:
    """Budget: the two defaults and one more. `detect` loads; while a session uses it,
    `pose` is refused (never unload a busy model, never exceed the budget); once it is idle,
    `pose` unloads it. With two more slots, the older idle one goes, not the busy one."""
    backend = start(start_backend, triton, tmp_path / "state", max_loaded_models=3)
    busy, _ = await open_session(backend, token_issuer, ["detect"])
    await a_result(busy)

    seen, code, reason = await refused(backend, token_issuer, ["pose"])
    assert seen == []
    assert code == CloseCode.INTERNAL_ERROR
    assert "model budget full" in reason
    await a_result(busy, 2)  # the busy model still serves

    await busy.close()
    ws, seen = await open_session(backend, token_issuer, ["pose"])
    assert [m["type"] for m in seen] == ["notice", "ready"]
    await a_result(ws)
    await ws.close()
    assert sorted(backend.get("/health/ready")[1]["loaded"]) == sorted([*DEFAULTS, "pose"])


async def test_with_room_for_two_the_older_idle_model_goes(
    start_backend: BackendFactory, triton: LocalTriton, token_issuer: TokenIssuer, tmp_path: Path
) -> None:
    backend = start(start_backend, triton, tmp_path / "state", max_loaded_models=4)
    for models in (["detect"], ["ocr"]):  # detect used, then ocr: detect is older
        ws, _ = await open_session(backend, token_issuer, models)
        await a_result(ws)
        await ws.close()
    busy, _ = await open_session(backend, token_issuer, ["detect"])  # detect: busy, newest
    ws, seen = await open_session(backend, token_issuer, ["pose"])
    assert [m["type"] for m in seen] == ["notice", "ready"]
    await a_result(ws)
    assert sorted(backend.get("/health/ready")[1]["loaded"]) == sorted(
        [*DEFAULTS, "detect", "pose"]
    )
    await a_result(busy)
    await asyncio.gather(ws.close(), busy.close())


async def test_sessions_asking_at_once_on_two_workers_load_the_model_once(
    start_backend: BackendFactory, triton: LocalTriton, token_issuer: TokenIssuer, tmp_path: Path
) -> None:
    """Two backends sharing one host store are two workers of one host."""
    state = tmp_path / "state"
    workers = [start(start_backend, triton, state), start(start_backend, triton, state)]
    opened = await asyncio.gather(
        *(open_session(workers[i % 2], token_issuer, ["pose"]) for i in range(6))
    )
    for ws, seen in opened:
        assert [m["type"] for m in seen] == ["notice", "ready"]
        await a_result(ws)
    assert loads_of(triton, "pose") == 1
    await asyncio.gather(*(ws.close() for ws, _ in opened))


async def test_a_load_that_fails_closes_with_the_reason_and_breaks_nothing(
    start_backend: BackendFactory, triton: LocalTriton, token_issuer: TokenIssuer, tmp_path: Path
) -> None:
    backend = start(start_backend, triton, tmp_path / "state")
    repository = triton.run_dir / "models"
    (repository / "pose").rename(tmp_path / "pose-aside")  # the injected fault
    seen, code, reason = await refused(backend, token_issuer, ["pose"])
    assert [m.get("kind") for m in seen] == ["loading"]
    assert code == CloseCode.INTERNAL_ERROR
    assert "pose could not load" in reason
    # The backend goes on: other sessions are served, and the model loads once it is back.
    other, _ = await open_session(backend, token_issuer, ["face"])
    await a_result(other)
    await other.close()
    (tmp_path / "pose-aside").rename(repository / "pose")
    ws, seen = await open_session(backend, token_issuer, ["pose"])
    assert [m["type"] for m in seen] == ["notice", "ready"]
    await a_result(ws)
    await ws.close()
