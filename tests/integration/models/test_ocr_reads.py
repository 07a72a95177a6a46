"""OCR through the backend and the real tritonserver: rendered strings come back exactly, and
recognition runs when the text regions change or the client asks — not on every frame."""

from __future__ import annotations

import json

import pytest
import websockets

from tests.integration.gpu_host.dataplane_support import (
    RunningBackend,
    TokenIssuer,
    frame,
    overlap,
    recv_json,
    say_hello,
    unique_user,
)
from tests.integration.models.models_support import infer_once, render_page

pytestmark = pytest.mark.triton

LINES = ("Hello World", "Spinup 2026", "Price: $42.50", "QUICK BROWN FOX")


async def test_reads_rendered_strings_exactly(
    backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    """Given a camera frame with four printed lines, an `ocr` session gets each string back,
    in reading order, with a box around its ink; the text detector it relies on ran without
    being reported."""
    page = render_page(LINES)
    result = await infer_once(backend, token_issuer, page.jpeg, ["ocr"])
    assert [t["text"] for t in result["texts"]] == list(LINES)
    for read, ink in zip(result["texts"], page.boxes, strict=True):
        assert read["model"] == "ocr"
        assert read["score"] > 0.9
        assert overlap(read["box"], ink) > 0.95, "the read's box covers the line"
    assert result["detections"] == []
    assert {"text.infer", "ocr.infer"} <= set(result["timing_ms"])


async def test_text_and_ocr_together_report_regions_and_reads(
    backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    page = render_page(LINES[:2])
    result = await infer_once(backend, token_issuer, page.jpeg, ["text", "ocr"])
    assert [(d["model"], d["label"]) for d in result["detections"]] == [("text", "text")] * 2
    assert [t["text"] for t in result["texts"]] == list(LINES[:2])
    assert [t["box"] for t in result["texts"]] == [d["box"] for d in result["detections"]]


async def test_recognition_runs_on_change_or_request_only(
    backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    """Given an `ocr` session, the same page twice is recognized once (the second frame
    reuses the reads); a page whose lines moved is recognized again; and after the client's
    `read_text` request the next frame is recognized even though nothing changed."""
    still, moved = render_page(LINES[:2]), render_page(LINES[:2], top=90)
    async with websockets.connect(backend.ws_url, max_size=None) as ws:
        assert (await say_hello(ws, token_issuer.token(unique_user()), ["ocr"]))["type"] == "ready"

        async def send(frame_id: int, jpeg: bytes) -> tuple[list[str], bool]:
            await ws.send(frame(frame_id, jpeg))
            result = await recv_json(ws, wait_s=60)
            assert result["frame_id"] == frame_id, result
            return [t["text"] for t in result["texts"]], "ocr.infer" in result["timing_ms"]

        assert await send(1, still.jpeg) == (list(LINES[:2]), True)
        assert await send(2, still.jpeg) == (list(LINES[:2]), False), "nothing changed"
        assert await send(3, moved.jpeg) == (list(LINES[:2]), True), "the lines moved"
        assert await send(4, moved.jpeg) == (list(LINES[:2]), False)
        await ws.send(json.dumps({"type": "read_text"}))
        assert await send(5, moved.jpeg) == (list(LINES[:2]), True), "the client asked"
        assert await send(6, moved.jpeg) == (list(LINES[:2]), False), "asked once"


async def test_read_text_needs_an_ocr_session(
    backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    async with websockets.connect(backend.ws_url) as ws:
        await say_hello(ws, token_issuer.token(unique_user()), ["text"])
        await ws.send(json.dumps({"type": "read_text"}))
        error = await recv_json(ws)
    assert (error["type"], error["code"]) == ("error", "bad_message")
    assert "select ocr" in error["message"]
