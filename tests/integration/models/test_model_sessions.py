"""Sessions over several models: the default selection, every model's results in one message,
and the frame budget — through the backend's WebSocket and the real tritonserver."""

from __future__ import annotations

import io

import numpy as np
import pytest
import websockets
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from tests.integration.gpu_host.dataplane_support import (
    BackendFactory,
    RunningBackend,
    TokenIssuer,
    frame,
    recv_json,
    say_hello,
    unique_user,
)
from tests.integration.models.models_support import BUILTIN, YOLO_NAME, camera_jpeg, infer_once
from tests.unit.vision.photos import DEJAVU_SANS, load

pytestmark = pytest.mark.triton


def astronaut_with_a_sign() -> bytes:
    """A person, their face, and a printed word: something for every model."""
    image = PILImage.fromarray(load("astronaut"))
    draw = ImageDraw.Draw(image)
    draw.rectangle((300, 400, 500, 470), fill="white")
    draw.text((315, 410), "SPINUP", font=ImageFont.truetype(str(DEJAVU_SANS), 40), fill="black")
    return camera_jpeg(np.asarray(image))


async def test_a_hello_without_models_gets_detect_and_pose(
    backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    async with websockets.connect(backend.ws_url, max_size=None) as ws:
        ready = await say_hello(ws, token_issuer.token(unique_user()))
        assert ready["models"] == ["detect", "pose"]
        await ws.send(frame(1, camera_jpeg(load("astronaut"))))
        result = await recv_json(ws, wait_s=60)
    assert {d["model"] for d in result["detections"]} == {"detect"}
    assert [k["model"] for k in result["keypoints"]] == ["pose"]
    assert result["texts"] == []


async def test_every_model_contributes_to_one_result(
    backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    """Given a session with all seven served models, one frame's single result carries each
    one's output, each tagged with its model."""
    models = [*BUILTIN, YOLO_NAME]
    result = await infer_once(backend, token_issuer, astronaut_with_a_sign(), models)
    by_model = {(d["model"], d["label"]) for d in result["detections"]}
    assert {("detect", "person"), ("face", "face"), ("text", "text")} <= by_model
    assert (YOLO_NAME, "square") in by_model
    assert [k["model"] for k in result["keypoints"]] == ["pose"]
    assert [(t["model"], t["text"]) for t in result["texts"]] == [("ocr", "SPINUP")]
    assert {f"{m}.infer" for m in models} <= set(result["timing_ms"])


async def test_models_over_the_frame_budget_are_named_late(
    start_backend: BackendFactory, token_issuer: TokenIssuer
) -> None:
    """Given a 1 ms budget, no model can answer in time (gRPC alone takes longer): every
    frame still gets its result at once, empty, naming the late models; the socket stays
    open for the next frame."""
    running = start_backend(models=("detect", "face"), frame_budget_ms=1)
    async with websockets.connect(running.ws_url, max_size=None) as ws:
        ready = await say_hello(ws, token_issuer.token(unique_user()), ["face", "detect"])
        assert ready["frame_budget_ms"] == 1
        for frame_id in (1, 2):
            await ws.send(frame(frame_id, camera_jpeg(load("astronaut"))))
            result = await recv_json(ws)
            assert (result["type"], result["frame_id"]) == ("result", frame_id)
            assert result["late"] == ["face", "detect"]
            assert result["detections"] == []
    status, metrics = running.get("/metrics")
    assert status == 200
    assert 'spinup_models_late_total{model="detect"} 2.0' in metrics


def test_jpeg_helper_round_trips() -> None:
    jpeg = camera_jpeg(np.zeros((8, 8, 3), np.uint8))
    assert PILImage.open(io.BytesIO(jpeg)).size == (8, 8)
