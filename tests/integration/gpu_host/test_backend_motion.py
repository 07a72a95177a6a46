"""The motion gate end to end: real backend, real tritonserver (the text detector). The same
frame sent again gets the first one's results with `reused: true` when the gate is on, and
a fresh inference (no `reused`) when it is off, as by default."""

from __future__ import annotations

import pytest
import websockets

from gpu_host.triton.local import LocalTriton
from tests.integration.gpu_host.dataplane_support import (
    BackendFactory,
    TextImage,
    TokenIssuer,
    frame,
    recv_json,
    say_hello,
    unique_user,
)

pytestmark = pytest.mark.triton


@pytest.mark.parametrize(
    ("settings", "reused"),
    [({"motion_gate": True}, [None, True, True]), ({}, [None, None, None])],
    ids=["gate on", "gate off (default)"],
)
async def test_a_repeated_frame_is_reused_only_when_the_gate_is_on(
    start_backend: BackendFactory,
    triton: LocalTriton,
    token_issuer: TokenIssuer,
    text_image: TextImage,
    settings: dict[str, bool],
    reused: list[bool | None],
) -> None:
    backend = start_backend(triton_url=triton.http_url, **settings)
    async with websockets.connect(backend.ws_url, max_size=None) as ws:
        ready = await say_hello(ws, token_issuer.token(unique_user()), ["text"])
        assert ready["type"] == "ready", ready
        results = []
        for frame_id in (1, 2, 3):  # one in flight at a time: none is dropped
            await ws.send(frame(frame_id, text_image.jpeg))
            results.append(await recv_json(ws))
    assert [r["type"] for r in results] == ["result"] * 3, results
    assert [r.get("reused") for r in results] == reused
    assert [(r["frame_id"], r["capture_us"]) for r in results] == [(1, 1000), (2, 2000), (3, 3000)]
    assert results[0]["detections"], "the rendered text is found"
    for result in results[1:]:
        # A fresh inference of the same JPEG finds the same; a reused one repeats it.
        assert result["detections"] == results[0]["detections"]
        assert ("motion" in result["timing_ms"]) is bool(settings)
    status, text = backend.get("/metrics")
    assert status == 200
    reused_count = sum(r.get("reused") is True for r in results)
    assert f"spinup_frames_reused_total {float(reused_count)}" in text
