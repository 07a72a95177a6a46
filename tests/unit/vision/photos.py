"""Real photographs that ship inside installed wheels, and reference boxes drawn by hand.

The boxes were set by looking at each picture on a 10-pixel grid; they are pixel
coordinates (x1, y1, x2, y2) of the full-size image.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import skimage
from PIL import Image as PILImage

from gpu_host.vision.types import Box, Image

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"
MPL_DATA = Path(matplotlib.get_data_path())
DEJAVU_SANS = MPL_DATA / "fonts" / "ttf" / "DejaVuSans.ttf"

FILES: dict[str, Path] = {
    "astronaut": SKIMAGE_DATA / "astronaut.png",
    "camera": SKIMAGE_DATA / "camera.png",
    "coffee": SKIMAGE_DATA / "coffee.png",
    "chelsea": SKIMAGE_DATA / "chelsea.png",
    "motorcycle_left": SKIMAGE_DATA / "motorcycle_left.png",
    "grace_hopper": MPL_DATA / "sample_data" / "grace_hopper.jpg",
}

PixelBox = tuple[float, float, float, float]

OBJECTS: dict[str, tuple[str, PixelBox]] = {
    "astronaut": ("person", (20, 15, 370, 512)),
    "camera": ("person", (0, 65, 330, 512)),
    "grace_hopper": ("person", (0, 20, 512, 600)),
    "chelsea": ("cat", (0, 0, 451, 300)),
    "coffee": ("cup", (175, 15, 415, 290)),
    "motorcycle_left": ("motorcycle", (95, 75, 690, 455)),
}
"""The main object of each photo: its COCO label and box."""

FACES: dict[str, PixelBox] = {
    "astronaut": (172, 75, 282, 172),
    "camera": (180, 115, 255, 205),
    "grace_hopper": (160, 140, 365, 330),
}
"""Forehead to chin, cheek to cheek (the camera man is in profile: ear to nose)."""

NO_PEOPLE = ("coffee", "chelsea", "motorcycle_left")


def load(name: str) -> Image:
    """The photo as H×W×3 RGB uint8 (camera.png is grey: its channel is repeated)."""
    array = np.asarray(PILImage.open(FILES[name]).convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(array)


def to_pixels(box: Box, image: Image) -> PixelBox:
    height, width = image.shape[:2]
    return (box[0] * width, box[1] * height, box[2] * width, box[3] * height)


def iou(a: PixelBox, b: PixelBox) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def inside(point: tuple[float, float], box: PixelBox, margin: float = 0.0) -> bool:
    x, y = point
    return box[0] - margin <= x <= box[2] + margin and box[1] - margin <= y <= box[3] + margin
