"""NanoDet (`detect`) on real photographs: the expected COCO object, where a person saw it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest

from gpu_host.vision.coco import COCO_LABELS
from gpu_host.vision.detect import OUTPUT, DetectParams, NanoDetProcessor, head_candidates
from gpu_host.vision.types import Image
from tests.unit.vision.harness import Photo, Run
from tests.unit.vision.photos import OBJECTS, iou, to_pixels

MIN_IOU = 0.5


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_finds_the_main_object(name: str, photo: Photo, run: Run) -> None:
    """Given a photo with a known main object, when detected, then a box of that label
    overlaps the hand-drawn reference by IoU >= 0.5."""
    label, reference = OBJECTS[name]
    image = photo(name)
    result = run(NanoDetProcessor(), image)
    overlaps = [
        iou(to_pixels(d.box, image), reference) for d in result.detections if d.label == label
    ]
    assert overlaps, f"no {label} in {[(d.label, round(d.score, 2)) for d in result.detections]}"
    assert max(overlaps) >= MIN_IOU


def test_results_are_well_formed(photo: Photo, run: Run) -> None:
    result = run(NanoDetProcessor(), photo("grace_hopper"))
    assert result.detections
    for d in result.detections:
        assert d.model == "detect"
        assert d.label in COCO_LABELS
        assert DetectParams().score_threshold <= d.score <= 1
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= 1
        assert 0 <= y1 < y2 <= 1
    scores = [d.score for d in result.detections]
    assert scores == sorted(scores, reverse=True)


def test_a_blank_frame_finds_nothing(run: Run) -> None:
    assert run(NanoDetProcessor(), np.full((240, 320, 3), 128, np.uint8)).detections == ()


def test_preprocess_letterboxes_into_the_model_input() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    tensors, letterbox = NanoDetProcessor().preprocess(image)
    assert tensors["image"].shape == (416, 416, 3)
    assert tensors["image"].dtype == np.uint8
    assert letterbox.scale == pytest.approx(416 / 200)
    assert letterbox.pad_y == (416 - 208) // 2


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({}, "output 'detections' missing"),
        ({"detections": np.zeros((1000, 5))}, "'detections' has shape"),
    ],
)
def test_bad_outputs_are_named(outputs: dict[str, npt.NDArray[Any]], message: str) -> None:
    processor = NanoDetProcessor()
    _, letterbox = processor.preprocess(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=message):
        processor.postprocess(outputs, letterbox)


@pytest.fixture(scope="module")
def with_grids(zoo_dir: Path) -> ort.InferenceSession:
    """The committed graph with its raw grids (the box head's inputs) as outputs too."""
    model = onnx.load(str(zoo_dir / "detect.onnx"))
    for name in GRIDS:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, ["CPUExecutionProvider"])


GRIDS = [f"{kind}_{s}" for s in (8, 16, 32) for kind in ("cls", "reg")]


def noise() -> Image:
    return np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", [*sorted(OBJECTS), "noise"])
def test_in_graph_decoding_equals_the_numpy_path(
    name: str, photo: Photo, with_grids: ort.InferenceSession
) -> None:
    """Given a real photograph (and noise), the graph's `detections` give the candidates and
    the detections that decoding its raw grids in NumPy (the previous path) gives."""
    processor = NanoDetProcessor()
    image = noise() if name == "noise" else photo(name)
    tensors, letterbox = processor.preprocess(image)
    found, *grids = with_grids.run([OUTPUT, *GRIDS], {"image": tensors["image"][None]})
    raw = {name: grid[0] for name, grid in zip(GRIDS, grids, strict=True)}
    boxes, scores, classes = head_candidates(found[0], processor.params)
    want_boxes, want_scores, want_classes = processor.grid_candidates(raw)
    assert len(scores) == len(want_scores)
    assert classes.tolist() == want_classes.tolist()
    np.testing.assert_allclose(scores, want_scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(boxes, want_boxes, rtol=0, atol=1e-3)  # input pixels
    got = processor.postprocess({OUTPUT: found[0]}, letterbox).detections
    want = processor.detections(want_boxes, want_scores, want_classes, letterbox).detections
    assert [(d.label, round(d.score, 5)) for d in got] == [
        (d.label, round(d.score, 5)) for d in want
    ]
    for g, w in zip(got, want, strict=True):
        assert g.box == pytest.approx(w.box, abs=1e-5)


def test_size_must_fit_the_strides() -> None:
    with pytest.raises(ValueError, match="multiple of every stride"):
        NanoDetProcessor(size=420)
