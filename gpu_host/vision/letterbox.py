"""Fitting a frame into a model's fixed input without distorting it."""

from __future__ import annotations

import cv2
import numpy as np

from gpu_host.vision.types import Image, Letterbox


def check_image(image: Image) -> None:
    """A frame must be H×W×3 uint8 with both sides > 0."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 array, got {getattr(image, 'dtype', type(image))}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3 RGB, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")


def letterbox(image: Image, height: int, width: int, *, pad: int = 0) -> tuple[Image, Letterbox]:
    """Resize `image` to fit height×width keeping its aspect ratio, centred, padded with `pad`."""
    check_image(image)
    src_h, src_w = image.shape[:2]
    scale = min(width / src_w, height / src_h)
    new_w = min(width, max(1, round(src_w * scale)))
    new_h = min(height, max(1, round(src_h * scale)))
    # INTER_AREA averages when shrinking (no aliasing of thin edges); LINEAR when growing.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    pad_x = (width - new_w) // 2
    pad_y = (height - new_h) // 2
    canvas = np.full((height, width, 3), pad, dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(scale=scale, pad_x=pad_x, pad_y=pad_y, src_w=src_w, src_h=src_h)


def box_to_frame(
    letterbox: Letterbox, x1: float, y1: float, x2: float, y2: float
) -> tuple[float, float, float, float]:
    """A box in model-input pixels → normalized frame coordinates, clamped to the frame."""
    fx1, fy1 = letterbox.to_frame(x1, y1)
    fx2, fy2 = letterbox.to_frame(x2, y2)
    return (fx1, fy1, fx2, fy2)
