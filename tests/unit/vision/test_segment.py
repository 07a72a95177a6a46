"""Selfie segmentation (`segment`): the post-processing on made-up probability maps, and the
committed model on real photographs through ONNX Runtime."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from gpu_host.vision.letterbox import letterbox
from gpu_host.vision.segment import (
    SegmentParams,
    SelfieSegmentProcessor,
    content_region,
    mask_size,
)
from gpu_host.vision.types import MASK_MAX_SIDE, FixedInput, Image, Letterbox, ModelOutput
from tests.unit.vision.harness import Photo, Run
from tests.unit.vision.reference_masks import MIN_IOU, load_reference, mask_iou, on_frame

SIZE = 256
Floats = npt.NDArray[np.float32]


def fitted(width: int, height: int) -> Letterbox:
    """How a width×height frame is fitted into the model input."""
    return letterbox(np.zeros((height, width, 3), np.uint8), SIZE, SIZE)[1]


def post(prob: Floats, box: Letterbox, params: SegmentParams | None = None) -> ModelOutput:
    processor = SelfieSegmentProcessor(params=params)
    return processor.postprocess({"mask": prob[:, :, None]}, box)


FRAMES = [(320, 240), (240, 320), (256, 256), (1000, 90), (90, 1000), (641, 479), (5, 3)]


@pytest.mark.parametrize(("width", "height"), FRAMES)
def test_content_region_is_where_letterbox_put_the_frame(width: int, height: int) -> None:
    canvas, box = letterbox(np.full((height, width, 3), 255, np.uint8), SIZE, SIZE)
    rows, cols = np.nonzero(canvas[:, :, 0])
    x0, y0, x1, y1 = content_region(box, SIZE, SIZE)
    assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


@pytest.mark.parametrize(("width", "height"), FRAMES)
def test_padding_is_cropped_away(width: int, height: int) -> None:
    """A map that says person only in the padding gives no mask; one that says person only
    inside the frame gives a mask with every cell set."""
    box = fitted(width, height)
    x0, y0, x1, y1 = content_region(box, SIZE, SIZE)
    inside = np.zeros((SIZE, SIZE), np.float32)
    inside[y0:y1, x0:x1] = 1.0
    assert post(1.0 - inside, box).masks == ()
    (mask,) = post(inside, box).masks
    assert mask.bitmap.all()


@pytest.mark.parametrize(
    ("width", "height", "cells"),
    [
        (320, 240, (64, 48)),
        (640, 480, (64, 48)),
        (240, 320, (64, 85)),  # portrait: 64 wide, the height follows
        (256, 256, (64, 64)),
        (90, 1000, (9, MASK_MAX_SIDE)),  # very tall: the height is capped instead
        (1000, 90, (64, 6)),
        (20, 10, (20, 10)),  # never more cells than the frame has pixels
    ],
)
def test_bitmap_keeps_the_frame_aspect(width: int, height: int, cells: tuple[int, int]) -> None:
    (mask,) = post(np.ones((SIZE, SIZE), np.float32), fitted(width, height)).masks
    h, w = mask.bitmap.shape
    assert (w, h) == cells
    assert mask.box == (0.0, 0.0, 1.0, 1.0)
    assert (mask.model, mask.label) == ("segment", "person")


@pytest.mark.parametrize(("width", "height"), [(64, 64), (300, 1), (1, 300), (1, 1)])
def test_mask_size_stays_within_the_limits(width: int, height: int) -> None:
    w, h = mask_size(width, height, 64)
    assert 1 <= w <= min(64, width)
    assert 1 <= h <= min(MASK_MAX_SIDE, height)


def test_left_half_person_gives_the_left_half_of_the_bitmap() -> None:
    """Row 0 is the frame's top, column 0 its left: a person in the frame's left half (and
    nowhere in the padding) sets exactly the bitmap's left half."""
    box = fitted(320, 240)
    x0, y0, x1, y1 = content_region(box, SIZE, SIZE)
    prob = np.zeros((SIZE, SIZE), np.float32)
    prob[y0:y1, x0 : (x0 + x1) // 2] = 0.9
    (mask,) = post(prob, box).masks
    want = np.zeros((48, 64), np.bool_)
    want[:, :32] = True
    np.testing.assert_array_equal(mask.bitmap, want)
    assert mask.score == pytest.approx(0.9)


def test_a_top_left_quarter_lands_top_left() -> None:
    box = fitted(240, 320)
    x0, y0, x1, y1 = content_region(box, SIZE, SIZE)
    prob = np.zeros((SIZE, SIZE), np.float32)
    prob[y0 : (y0 + y1) // 2, x0 : (x0 + x1) // 2] = 1.0
    (mask,) = post(prob, box).masks
    rows, cols = np.nonzero(mask.bitmap)
    assert (rows.min(), cols.min()) == (0, 0)
    assert rows.max() + 1 == pytest.approx(mask.bitmap.shape[0] / 2, abs=1)
    assert cols.max() + 1 == pytest.approx(mask.bitmap.shape[1] / 2, abs=1)


@pytest.mark.parametrize(("level", "threshold", "set_"), [(0.49, 0.5, False), (0.51, 0.5, True)])
def test_threshold(level: float, threshold: float, set_: bool) -> None:
    prob = np.full((SIZE, SIZE), level, np.float32)
    masks = post(prob, fitted(320, 240), SegmentParams(threshold=threshold)).masks
    assert bool(masks) is set_
    if set_:
        assert masks[0].bitmap.all()
        assert masks[0].score == pytest.approx(level)


def test_empty_map_gives_no_mask() -> None:
    assert post(np.zeros((SIZE, SIZE), np.float32), fitted(320, 240)) == ModelOutput()


def test_score_is_the_mean_probability_inside_the_mask() -> None:
    prob = np.zeros((SIZE, SIZE), np.float32)
    prob[:, : SIZE // 2] = 0.6
    prob[:, SIZE // 2 :] = 1.0
    (mask,) = post(prob, fitted(256, 256)).masks
    assert mask.bitmap.all()
    assert mask.score == pytest.approx(0.8)


def test_a_misshapen_output_is_refused() -> None:
    processor = SelfieSegmentProcessor()
    with pytest.raises(ValueError, match="mask"):
        processor.postprocess({"mask": np.zeros((128, 128, 1), np.float32)}, fitted(320, 240))


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.0}, "threshold"),
        ({"max_width": 97}, "max_width"),
    ],
)
def test_params_are_checked(bad: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SegmentParams(**bad)  # type: ignore[arg-type]


def test_preprocess_letterboxes_into_the_fixed_input() -> None:
    processor = SelfieSegmentProcessor()
    assert isinstance(processor, FixedInput)
    assert processor.input_hw == (SIZE, SIZE)
    image: Image = np.full((240, 320, 3), 200, np.uint8)
    tensors, box = processor.preprocess(image)
    assert tensors["image"].shape == (SIZE, SIZE, 3)
    assert tensors["image"].dtype == np.uint8
    assert (box.pad_x, box.pad_y) == (0, 32)


@pytest.mark.parametrize("name", sorted(MIN_IOU))
def test_person_mask_matches_the_reference(name: str, photo: Photo, run: Run) -> None:
    """Given a photo of a person, the committed model's mask, stretched over the photo,
    overlaps the reference mask drawn for it (masks/draw.py) by at least MIN_IOU."""
    image = photo(name)
    (mask,) = run(SelfieSegmentProcessor(), image).masks
    assert mask_iou(on_frame(mask, image), load_reference(name)) >= MIN_IOU[name]
    assert mask.score > 0.8
