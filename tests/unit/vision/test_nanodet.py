"""NanoDet (`detect`) on real photographs: the expected COCO object, where a person saw it."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from gpu_host.vision.coco import COCO_LABELS
from gpu_host.vision.detect import DetectParams, NanoDetProcessor
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
        ({}, "output 'cls_8' missing"),
        ({"cls_8": np.zeros((10, 80)), "reg_8": np.zeros((2704, 44))}, "'cls_8' has shape"),
    ],
)
def test_bad_outputs_are_named(outputs: dict[str, npt.NDArray[Any]], message: str) -> None:
    processor = NanoDetProcessor()
    _, letterbox = processor.preprocess(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=message):
        processor.postprocess(outputs, letterbox)


def test_size_must_fit_the_strides() -> None:
    with pytest.raises(ValueError, match="multiple of every stride"):
        NanoDetProcessor(size=420)
