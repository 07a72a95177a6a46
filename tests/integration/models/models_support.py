"""Helpers for the served-model tests (fixtures are in conftest.py).

The backend, token and frame helpers are the data plane tests' (`dataplane_support`), and the
photographs with their reference boxes are the vision tests' (`photos`); conftest.py puts
both folders on the import path.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import websockets
from onnx import TensorProto, helper, numpy_helper
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from gpu_host.vision.types import Box, Image
from tests.integration.gpu_host.dataplane_support import (
    RunningBackend,
    TokenIssuer,
    frame,
    recv_json,
    say_hello,
    unique_user,
)
from tests.unit.vision.photos import DEJAVU_SANS

BUILTIN = ("detect", "pose", "face", "text", "ocr", "segment")


def camera_jpeg(image: Image, quality: int = 85) -> bytes:
    """The photo as a browser camera engine would send it."""
    buf = io.BytesIO()
    PILImage.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


async def infer_once(
    backend: RunningBackend, issuer: TokenIssuer, jpeg: bytes, models: list[str]
) -> dict[str, Any]:
    """Open a session for `models`, send one frame, return its result."""
    async with websockets.connect(backend.ws_url, max_size=None) as ws:
        ready = await say_hello(ws, issuer.token(unique_user()), models)
        assert ready["type"] == "ready", ready
        await ws.send(frame(1, jpeg))
        result = await recv_json(ws, wait_s=60)
    assert result["type"] == "result", result
    assert result["late"] == [], "the test backend's budget is generous"
    return result


def pixel_box(box: list[float], image: Image) -> tuple[float, float, float, float]:
    height, width = image.shape[:2]
    return (box[0] * width, box[1] * height, box[2] * width, box[3] * height)


@dataclass(frozen=True)
class Page:
    jpeg: bytes
    lines: tuple[str, ...]
    boxes: tuple[Box, ...]
    """Where each line's ink is, normalized."""


def render_page(lines: tuple[str, ...], size: int = 32, top: int = 40) -> Page:
    """Black DejaVu Sans lines on a white 640×480 camera frame, 100 px apart."""
    image = PILImage.new("RGB", (640, 480), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(DEJAVU_SANS), size)
    boxes = []
    for i, line in enumerate(lines):
        x1, y1, x2, y2 = draw.textbbox((40, top + 100 * i), line, font=font)
        draw.text((40, top + 100 * i), line, fill="black", font=font)
        boxes.append((x1 / 640, y1 / 480, x2 / 640, y2 / 480))
    return Page(camera_jpeg(np.asarray(image)), lines, tuple(boxes))


# A user's YOLOv8 detect export, in miniature: 64 px input, two classes. Its random-weight
# convolution reads the real input, but the output is that times zero plus a known constant,
# so the test knows the one box the adapter must report.
YOLO_NAME = "shapes"
YOLO_SIZE = 64
YOLO_LABELS = ("circle", "square")
YOLO_ANCHORS = (64 // 8) ** 2 + (64 // 16) ** 2 + (64 // 32) ** 2
YOLO_BOX = (32.0, 32.0, 32.0, 16.0)
"""cx, cy, w, h in input pixels: x 16..48, y 24..40 of the 64×64 input."""


def yolo_output() -> npt.NDArray[np.float32]:
    out = np.zeros((4 + len(YOLO_LABELS), YOLO_ANCHORS), np.float32)
    out[:4, 0] = YOLO_BOX
    out[4 + 1, 0] = 0.9  # a square
    return out


def yolov8_like_onnx(seed: int = 0) -> onnx.ModelProto:
    """`images` float32 [N, 3, 64, 64] → `output0` [N, 6, 84], as Ultralytics exports with
    `dynamic=True` (a dynamic batch)."""
    known = yolo_output()
    channels = known.shape[0]
    weights = np.random.default_rng(seed).normal(size=(channels, 3, 8, 8)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "w"], ["features"], strides=[8, 8]),
            helper.make_node("ReduceMean", ["features"], ["pooled"], axes=[2, 3], keepdims=0),
            helper.make_node("Unsqueeze", ["pooled", "last"], ["column"]),
            helper.make_node("Mul", ["column", "zero"], ["nothing"]),
            helper.make_node("Add", ["nothing", "known"], ["output0"]),
        ],
        "yolov8_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [
            helper.make_tensor_value_info(
                "output0", TensorProto.FLOAT, ["N", channels, YOLO_ANCHORS]
            )
        ],
        initializer=[
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array([2], np.int64), "last"),
            numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
            numpy_helper.from_array(known[None], "known"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what the Triton venv's ONNX Runtime reads
    onnx.checker.check_model(model)
    return model


def declare_user_model(folder: Path) -> Path:
    """Drop the export into `folder` with its `user_models.json`, as docs/models.md says."""
    onnx.save(yolov8_like_onnx(), str(folder / "shapes-yolov8.onnx"))
    declaration = {
        "models": [
            {
                "name": YOLO_NAME,
                "file": "shapes-yolov8.onnx",
                "layout": "yolov8-detect",
                "input_size": YOLO_SIZE,
                "labels": list(YOLO_LABELS),
                "max_batch_size": 4,
            }
        ]
    }
    path = folder / "user_models.json"
    path.write_text(json.dumps(declaration, indent=2))
    return path
