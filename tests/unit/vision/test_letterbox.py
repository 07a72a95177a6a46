"""Letterboxing a frame into a model input, and mapping model pixels back to the frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gpu_host.vision.letterbox import box_to_frame, letterbox


@pytest.mark.parametrize(("height", "width"), [(100, 200), (300, 150), (64, 64), (1, 999)])
def test_fits_and_centres(height: int, width: int) -> None:
    image = np.full((height, width, 3), 200, np.uint8)
    canvas, box = letterbox(image, 128, 128)
    assert canvas.shape == (128, 128, 3)
    assert canvas.dtype == np.uint8
    assert box.scale == pytest.approx(min(128 / width, 128 / height))
    # The frame's corners land on the content's corners, the padding stays black.
    assert box.to_frame(box.pad_x, box.pad_y) == (0.0, 0.0)
    right = box.pad_x + width * box.scale
    bottom = box.pad_y + height * box.scale
    assert box.to_frame(right, bottom) == pytest.approx((1.0, 1.0), abs=1e-6)
    if box.pad_y >= 1:
        assert canvas[0].max() == 0


def test_pad_value() -> None:
    canvas, _ = letterbox(np.zeros((10, 20, 3), np.uint8), 40, 40, pad=114)
    assert canvas[0, 0].tolist() == [114, 114, 114]


def test_box_to_frame_clamps_to_the_frame() -> None:
    _, box = letterbox(np.zeros((100, 200, 3), np.uint8), 100, 100)  # content y 25..75
    # (0, 0) is in the top padding: y would be -0.5 of the frame.
    assert box_to_frame(box, 0, 0, 50, 50) == pytest.approx((0.0, 0.0, 0.5, 0.5))


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10), np.uint8), "H×W×3"),
        (np.zeros((10, 10, 4), np.uint8), "H×W×3"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[1, 2, 3]], "uint8"),
    ],
)
def test_bad_frames_are_refused(image: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        letterbox(image, 32, 32)


@pytest.mark.parametrize(("height", "width"), [(240, 320), (480, 640), (8, 400), (400, 8)])
def test_shrinking_skips_no_pixel(height: int, width: int) -> None:
    """Given a one-pixel black and white checkerboard, when shrunk several times, then every
    output pixel is grey (their mean): no pixel was skipped, as plain bilinear would."""
    ys, xs = np.mgrid[0:height, 0:width]
    board = np.repeat((((ys + xs) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    canvas, box = letterbox(board, 96, 96)
    top, left = int(box.pad_y), int(box.pad_x)
    content = canvas[top : top + round(height * box.scale), left : left + round(width * box.scale)]
    assert content.size
    assert np.abs(content.astype(int) - 127).max() <= 16
