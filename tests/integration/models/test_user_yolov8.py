"""A user's own YOLOv8 export, declared in `user_models.json`, served with no code change.

Plumbing only, not accuracy: no YOLO weights ship with Spinup, so the export is a small
random-weight graph built with onnx.helper (see models_support.yolov8_like_onnx) whose output
is a known constant. It goes through the real path: spec from the declaration, Triton model
repository, the real tritonserver (Python backend, ONNX Runtime), the backend's WebSocket and
the YOLOv8 adapter's decoding and NMS.
"""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from gpu_host.triton.local import LocalTriton
from tests.integration.gpu_host.dataplane_support import RunningBackend, TokenIssuer
from tests.integration.models.models_support import (
    YOLO_ANCHORS,
    YOLO_LABELS,
    YOLO_NAME,
    camera_jpeg,
    infer_once,
)

pytestmark = pytest.mark.triton


def test_triton_serves_the_declared_model(triton: LocalTriton) -> None:
    client = grpcclient.InferenceServerClient(triton.grpc_url)
    config = client.get_model_config(YOLO_NAME, as_json=True)["config"]
    assert config["input"][0]["name"] == "images"
    assert [int(d) for d in config["input"][0]["dims"]] == [3, 64, 64]
    assert [int(d) for d in config["output"][0]["dims"]] == [4 + len(YOLO_LABELS), YOLO_ANCHORS]


async def test_its_detections_come_back_decoded(
    backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    """Given a 128×64 frame (letterboxed into 64×64 at half scale, 16 px bands), the graph's
    one box — x 16..48, y 24..40 of the input, class `square` at 0.9 — comes back in frame
    coordinates, labelled and tagged with the user's model name."""
    frame = np.full((64, 128, 3), 90, np.uint8)
    result = await infer_once(backend, token_issuer, camera_jpeg(frame), [YOLO_NAME])
    (detection,) = result["detections"]
    assert (detection["model"], detection["label"], detection["score"]) == (
        YOLO_NAME,
        "square",
        0.9,
    )
    assert detection["box"] == pytest.approx([0.25, 0.25, 0.75, 0.75], abs=1e-4)
    assert result["keypoints"] == []
