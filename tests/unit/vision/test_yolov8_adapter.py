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
    [
        ({"task": "classify"}, "task must be"),
        ({"labels": ()}, "labels must not be empty"),
        ({"task": "segment", "size": 66}, "not a multiple of 4"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Yolov8Processor(**kwargs)


# ---- segment: boxes as detect, then one instance mask per detection ----------------------

PROTO_SIDE = SIZE // 4
"""64 px input → 16×16 prototype masks."""


def segment_outputs() -> dict[str, npt.NDArray[np.float32]]:
    """Two nails and two prototypes: prototype 0 is +1 left of column 8 (−1 right of it),
    prototype 1 is +1 above row 8 (−1 below it)."""
    out = np.zeros((4 + 1 + 2, ANCHORS), np.float32)
    out[:5, 0], out[5:, 0] = (32, 32, 32, 16, 0.9), (1, 0)  # input x 16..48, y 24..40: left
    out[:5, 1], out[5:, 1] = (56, 32, 16, 16, 0.8), (0, -1)  # x 48..64, y 24..40: bottom
    cols = np.where(np.arange(PROTO_SIDE) < 8, 1.0, -1.0)
    protos = np.stack(
        [np.tile(cols, (PROTO_SIDE, 1)), np.tile(cols[:, None], (1, PROTO_SIDE))]
    ).astype(np.float32)
    return {"output0": out, "output1": protos}


def test_segment_masks_cover_each_detection_box() -> None:
    """Given the 128×64 frame (64×64 input, half scale, 16 px bands), each nail is reported
    as a detection AND as a mask over the same box, at prototype resolution (one cell per
    4 input pixels), row 0 at the box's top."""
    processor = Yolov8Processor(
        model="nails", task="segment", labels=("nail",), num_masks=2, size=SIZE
    )
    _, letterbox = processor.preprocess(FRAME)
    result = processor.postprocess(segment_outputs(), letterbox)
    assert [d.label for d in result.detections] == ["nail", "nail"]
    boxes = [value for d in result.detections for value in d.box]
    assert boxes == pytest.approx([0.25, 0.25, 0.75, 0.75, 0.75, 0.25, 1.0, 0.75])
    first, second = result.masks
    assert [(m.model, m.label, m.score, m.box) for m in result.masks] == [
        (d.model, d.label, d.score, d.box) for d in result.detections
    ]
    # Box 1 spans prototype columns 4..11 and rows 6..9: its left half is left of column 8.
    assert first.bitmap.tolist() == [[True] * 4 + [False] * 4] * 4
    # Box 2 spans rows 6..9, columns 12..15: coefficient −1 on "above row 8" keeps rows 8, 9.
    assert second.bitmap.tolist() == [[False] * 4] * 2 + [[True] * 4] * 2
    assert result.keypoints == ()


def test_segment_mask_is_downsampled_to_the_largest_side() -> None:
    """A 640 px export has 160×160 prototypes: a box over the whole input gets a 96×96 bitmap
    whose left 48 columns (left of prototype column 80) are set."""
    size, side = 640, 160
    anchors = sum((size // s) ** 2 for s in (8, 16, 32))
    out = np.zeros((4 + 1 + 1, anchors), np.float32)
    out[:, 0] = (320, 320, 640, 640, 0.9, 1)
    protos = np.where(np.arange(side) < 80, 1.0, -1.0)[None, None, :].repeat(side, axis=1)
    processor = Yolov8Processor(task="segment", labels=("thing",), num_masks=1, size=size)
    _, letterbox = processor.preprocess(np.zeros((640, 640, 3), np.uint8))
    result = processor.postprocess({"output0": out, "output1": protos}, letterbox)
    (mask,) = result.masks
    assert mask.bitmap.shape == (96, 96)
    assert mask.bitmap[:, :48].all()
    assert not mask.bitmap[:, 48:].any()


def test_segment_without_detections_has_no_masks() -> None:
    processor = Yolov8Processor(task="segment", labels=("nail",), num_masks=2, size=SIZE)
    _, letterbox = processor.preprocess(FRAME)
    outputs = segment_outputs()
    outputs["output0"][4] = 0.1  # every score below the threshold
    assert processor.postprocess(outputs, letterbox) == ModelOutput()


@pytest.mark.parametrize("task", ["detect", "pose"])
def test_normalized_coordinates_are_scaled_to_the_input(task: Any) -> None:
    """A TFLite export gives boxes (and keypoints) in 0..1 of the input: the same results as
    the pixel export."""
    out = detect_output() if task == "detect" else np.zeros((4 + 1 + 3, ANCHORS), np.float32)
    if task == "pose":
        out[:, 7] = (32, 32, 16, 32, 0.8, 28, 20, 0.9)
    normalized = out.copy()
    normalized[:4] /= SIZE
    if task == "pose":
        normalized[5:7] /= SIZE
    kwargs: dict[str, Any] = {"task": task, "size": SIZE, "num_keypoints": 1}
    if task == "detect":
        kwargs["labels"] = LABELS
    pixels = Yolov8Processor(**kwargs)
    scaled = Yolov8Processor(**kwargs, normalized_coordinates=True)
    _, letterbox = pixels.preprocess(FRAME)
    want = pixels.postprocess({"output0": out}, letterbox)
    got = scaled.postprocess({"output0": normalized}, letterbox)
    assert want.detections
    assert got == want
