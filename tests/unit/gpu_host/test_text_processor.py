"""Text detection pre/post-processing on synthetic inputs (no model)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from gpu_host.vision.letterbox import letterbox
from gpu_host.vision.text import (
    DbParams,
    TextProcessor,
    box_score,
    db_boxes,
    unclip,
)
from gpu_host.vision.types import Letterbox


def prob_map(
    h: int = 256, w: int = 320, *rects: tuple[int, int, int, int, float]
) -> npt.NDArray[np.float32]:
    """A probability map with filled rectangles (x1, y1, x2, y2, probability)."""
    prob = np.zeros((h, w), np.float32)
    for x1, y1, x2, y2, p in rects:
        prob[y1:y2, x1:x2] = p
    return prob


@pytest.mark.parametrize(
    ("src_hw", "scale", "pad"),
    [
        ((480, 640), 0.5, (0, 8)),  # 4:3 → 320×240, 8 px bands top and bottom
        ((720, 1280), 0.25, (0, 38)),  # 16:9 → 320×180
        ((1000, 500), 0.256, (96, 0)),  # portrait → 128×256, bands left and right
        ((128, 160), 2.0, (0, 0)),  # exact fit, upscaled
    ],
)
def test_letterbox_keeps_aspect_and_centres(
    src_hw: tuple[int, int], scale: float, pad: tuple[int, int]
) -> None:
    image = np.full((*src_hw, 3), 200, np.uint8)
    canvas, box = letterbox(image, 256, 320)
    assert canvas.shape == (256, 320, 3)
    assert canvas.dtype == np.uint8
    assert box.scale == pytest.approx(scale)
    assert (box.pad_x, box.pad_y) == tuple(pad)
    assert (box.src_w, box.src_h) == (src_hw[1], src_hw[0])
    if pad[1]:
        assert canvas[: pad[1]].max() == 0, "padding is black"
    assert box.to_frame(pad[0], pad[1]) == pytest.approx((0.0, 0.0))
    assert box.to_frame(320 - pad[0], 256 - pad[1]) == pytest.approx((1.0, 1.0), abs=0.01)


def test_preprocess_matches_the_spec_input() -> None:
    tensors, _ = TextProcessor().preprocess(np.zeros((480, 640, 3), np.uint8))
    assert list(tensors) == ["image"]
    assert tensors["image"].shape == (256, 320, 3)
    assert tensors["image"].dtype == np.uint8


def test_one_text_region_gives_one_box_around_it() -> None:
    """Given a map with one confident 100×20 region, the box covers the region grown by the
    unclip offset (area × 1.6 / perimeter ≈ 13.3 px per side)."""
    prob = prob_map(256, 320, (100, 100, 200, 120, 0.9))
    ((corners, score),) = db_boxes(prob, DbParams())
    # The 2×2 dilation adds a ring of zeros to the scored box: a little under 0.9.
    assert 0.8 <= score <= 0.9
    xs, ys = corners[:, 0], corners[:, 1]
    assert xs.min() == pytest.approx(100 - 13.6, abs=2.0)
    assert xs.max() == pytest.approx(200 + 13.6, abs=2.0)
    assert ys.min() == pytest.approx(100 - 13.6, abs=2.0)
    assert ys.max() == pytest.approx(120 + 13.6, abs=2.0)


@pytest.mark.parametrize(
    ("rect", "reason"),
    [
        ((100, 100, 200, 120, 0.2), "below the pixel threshold"),
        ((100, 100, 102, 140, 0.9), "thinner than min_side"),
    ],
)
def test_weak_or_thin_regions_give_no_box(
    rect: tuple[int, int, int, int, float], reason: str
) -> None:
    assert db_boxes(prob_map(256, 320, rect), DbParams()) == [], reason


def test_box_score_gates_regions_whose_mean_is_low() -> None:
    """Pixels just over the 0.3 threshold form a region, but its mean (0.35) is under the
    0.5 box threshold."""
    prob = prob_map(256, 320, (50, 50, 150, 80, 0.35))
    assert db_boxes(prob, DbParams()) == []
    assert len(db_boxes(prob, DbParams(box_thresh=0.3))) == 1


def test_max_boxes_caps_the_candidates() -> None:
    rects = [(10 + 30 * i, 10, 30 + 30 * i, 30, 0.9) for i in range(10)]
    assert len(db_boxes(prob_map(256, 320, *rects), DbParams(max_boxes=4))) == 4


def test_unclip_grows_each_side_by_the_db_offset() -> None:
    (_, (w, h), angle) = unclip(((50.0, 50.0), (100.0, 20.0), 10.0), 1.5)
    offset = 100 * 20 * 1.5 / 240
    assert (w, h, angle) == pytest.approx((100 + 2 * offset, 20 + 2 * offset, 10.0))


def test_box_score_is_the_mean_inside_the_polygon() -> None:
    prob = prob_map(50, 50, (10, 10, 20, 20, 1.0))
    corners = np.array([[10, 10], [19, 10], [19, 19], [10, 19]], np.float32)
    assert box_score(prob, corners) == pytest.approx(1.0)
    wider = np.array([[0, 10], [19, 10], [19, 19], [0, 19]], np.float32)
    assert box_score(prob, wider) == pytest.approx(0.5, abs=0.05)


def test_postprocess_maps_boxes_back_to_normalized_frame_coordinates() -> None:
    """Given a 640×480 frame letterboxed to 320×240 + 8 px bands, a region at model
    pixels (100..200, 108..128) is frame pixels (200..400, 200..240)."""
    processor = TextProcessor()
    _, box = letterbox(np.zeros((480, 640, 3), np.uint8), 256, 320)
    prob = prob_map(256, 320, (100, 108, 200, 128, 0.95))
    out = processor.postprocess({"prob": prob[np.newaxis]}, box)
    (det,) = out.detections
    assert (det.model, det.label) == ("text", "text")
    assert 0.85 <= det.score <= 0.95
    x1, y1, x2, y2 = det.box
    grow_x = 13.6 * 2 / 640
    grow_y = 13.6 * 2 / 480
    assert x1 == pytest.approx(200 / 640 - grow_x, abs=0.01)
    assert x2 == pytest.approx(400 / 640 + grow_x, abs=0.01)
    assert y1 == pytest.approx(200 / 480 - grow_y, abs=0.01)
    assert y2 == pytest.approx(240 / 480 + grow_y, abs=0.01)
    assert out.keypoints == ()
    assert out.texts == ()


def test_boxes_entirely_in_the_padding_are_dropped() -> None:
    box = Letterbox(scale=0.5, pad_x=0, pad_y=8, src_w=640, src_h=480)
    prob = prob_map(256, 320, (100, 0, 200, 6, 0.9))  # inside the top band only
    # Even grown, it clamps to y = 0 at both edges: an empty box.
    assert (
        TextProcessor(params=DbParams(unclip_ratio=0.0))
        .postprocess({"prob": prob[np.newaxis]}, box)
        .detections
        == ()
    )


def test_detections_come_in_reading_order() -> None:
    _, box = letterbox(np.zeros((256, 320, 3), np.uint8), 256, 320)
    prob = prob_map(
        256, 320, (200, 150, 280, 170, 0.9), (20, 150, 100, 170, 0.9), (20, 40, 100, 60, 0.9)
    )
    boxes = [d.box for d in TextProcessor().postprocess({"prob": prob[np.newaxis]}, box).detections]
    assert boxes == sorted(boxes, key=lambda b: (round(b[1], 2), b[0]))
    assert boxes[0][1] < boxes[1][1]
    assert boxes[1][0] < boxes[2][0]
