"""The YOLOv8 adapter, on small ONNX graphs built here (plumbing only, not accuracy).

No YOLO weights ship with Spinup. Each graph has the layout of an Ultralytics export
(`images` float32 [N, 3, S, S] → `output0` [N, channels, anchors]) and runs a random-weight
convolution over the real input, but its output is that convolution times zero plus a known
constant: so the test knows exactly which boxes the adapter must find, and where.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from gpu_host.vision.types import Image, ModelOutput
from gpu_host.vision.yolov8 import YoloParams, Yolov8Processor
from tests.unit.vision.harness import single

SIZE, STRIDE = 64, 8
ANCHORS = (SIZE // STRIDE) ** 2


def export_like(known: npt.NDArray[np.float32], seed: int = 0) -> ort.InferenceSession:
    """A YOLOv8-shaped graph whose `output0` is `known` ([channels, anchors]) for any input."""
    channels = known.shape[0]
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(channels, 3, STRIDE, STRIDE)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "w"], ["features"], strides=[STRIDE, STRIDE]),
            helper.make_node("Reshape", ["features", "flat"], ["flat_features"]),
            helper.make_node("Mul", ["flat_features", "zero"], ["nothing"]),
            helper.make_node("Add", ["nothing", "known"], ["output0"]),
        ],
        "yolov8_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", channels, ANCHORS])],
        initializer=[
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array([0, channels, -1], np.int64), "flat"),
            numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
            numpy_helper.from_array(known[None].astype(np.float32), "known"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run(processor: Yolov8Processor, session: ort.InferenceSession, image: Image) -> ModelOutput:
    tensors, letterbox = processor.preprocess(image)
    (out,) = session.run(None, single(tensors))
    return processor.postprocess({"output0": out[0]}, letterbox)


# A 128×64 frame letterboxes into 64×64 at scale 0.5 with 16 px of padding above and below.
FRAME = np.full((64, 128, 3), 90, np.uint8)
LABELS = ("cat", "dog", "bird")


def detect_output() -> npt.NDArray[np.float32]:
    out = np.zeros((4 + len(LABELS), ANCHORS), np.float32)
    out[:4, 0], out[4 + 1, 0] = (32, 26, 20, 10), 0.9  # dog
    out[:4, 1], out[4 + 1, 1] = (33, 26, 20, 10), 0.8  # the same dog, weaker: suppressed
    out[:4, 2], out[4 + 0, 2] = (32, 26, 20, 10), 0.7  # a cat on the same spot: kept
    out[:4, 3], out[4 + 2, 3] = (32, 4, 20, 6), 0.95  # a bird inside the padding: dropped
    out[:4, 4], out[4 + 2, 4] = (10, 40, 8, 8), 0.1  # below the threshold: dropped
    return out


def test_detect_layout_nms_and_mapping() -> None:
    processor = Yolov8Processor(labels=LABELS, size=SIZE)
    result = run(processor, export_like(detect_output()), FRAME)
    assert [(d.label, round(d.score, 2)) for d in result.detections] == [("dog", 0.9), ("cat", 0.7)]
    # Input box x 22..42, y 21..31 → frame pixels x 44..84, y 10..30 of 128×64.
    expected = (44 / 128, 10 / 64, 84 / 128, 30 / 64)
    for detection in result.detections:
        assert detection.model == "yolov8"
        assert detection.box == pytest.approx(expected, abs=1e-6)
    assert result.keypoints == ()


def test_batch_of_frames_gives_the_same_boxes() -> None:
    processor = Yolov8Processor(labels=LABELS, size=SIZE)
    session = export_like(detect_output())
    frames = [FRAME, np.zeros((64, 128, 3), np.uint8)]
    items = [processor.preprocess(f) for f in frames]
    (out,) = session.run(None, {"images": np.stack([t["images"] for t, _ in items])})
    results = [
        processor.postprocess({"output0": o}, lb) for o, (_, lb) in zip(out, items, strict=True)
    ]
    assert results[0] == results[1] == run(processor, session, FRAME)


def test_pose_layout_maps_keypoints() -> None:
    keypoints = 2
    out = np.zeros((4 + 1 + 3 * keypoints, ANCHORS), np.float32)
    out[:5, 7] = (32, 32, 16, 32, 0.8)
    out[5:, 7] = (28, 20, 0.9, 36, 44, 0.2)  # (x, y, visibility) × 2, input pixels
    processor = Yolov8Processor(model="yolov8-pose", task="pose", num_keypoints=2, size=SIZE)
    result = run(processor, export_like(out), FRAME)
    (person,) = result.detections
    assert person.label == "person"
    assert person.score == pytest.approx(0.8)
    (pose,) = result.keypoints
    assert pose.model == "yolov8-pose"
    # (28, 20) and (36, 44) in input pixels → frame pixels (56, 8) and (72, 56).
    flat = [value for point in pose.points for value in point]
    assert flat == pytest.approx([56 / 128, 8 / 64, 0.9, 72 / 128, 56 / 64, 0.2])


def test_preprocess_matches_ultralytics() -> None:
    """RGB in 0..1, CHW, grey 114 padding; or the letterboxed uint8 image as it is."""
    tensors, _ = Yolov8Processor(size=SIZE).preprocess(FRAME)
    images = tensors["images"]
    assert images.shape == (3, SIZE, SIZE)
    assert images.dtype == np.float32
    assert images[:, 0, 0] == pytest.approx([114 / 255] * 3)
    assert images[:, 32, 32] == pytest.approx([90 / 255] * 3)
    tensors, _ = Yolov8Processor(size=SIZE, uint8_input=True).preprocess(FRAME)
    assert tensors["images"].shape == (SIZE, SIZE, 3)
    assert tensors["images"].dtype == np.uint8


def test_cap_on_detections() -> None:
    out = np.zeros((4 + len(LABELS), ANCHORS), np.float32)
    for i in range(10):  # ten separate dogs
        out[:4, i], out[4 + 1, i] = (4 + 6 * i, 32, 4, 4), 0.5 + i / 100
    processor = Yolov8Processor(labels=LABELS, size=SIZE, params=YoloParams(max_detections=3))
    assert len(run(processor, export_like(out), FRAME).detections) == 3


def test_a_layout_that_does_not_match_is_named() -> None:
    processor = Yolov8Processor(size=SIZE)  # 80 COCO classes: 84 channels expected
    _, letterbox = processor.preprocess(FRAME)
    with pytest.raises(ValueError, match=r"'output0' has shape \(7, 64\), expected \(84, \?\)"):
        processor.postprocess({"output0": detect_output()}, letterbox)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"task": "segment"}, "task must be"), ({"labels": ()}, "labels must not be empty")],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Yolov8Processor(**kwargs)
