"""How the reference person masks here were made: `python -m tests.unit.vision.masks.draw`.

GrabCut (OpenCV) started from each photo's hand-drawn person box (`photos.OBJECTS`), then run
again with hints drawn by hand after looking at the photo on a 50-pixel grid: regions that
are certainly not the person (the camcorder and tripod, the held helmet, the sky and flag
beside Grace Hopper) and one that certainly is (the astronaut's neck ring). The result was
checked by eye and committed as a 1-bit PNG at the photo's full size; the PNGs, not this
script, are the reference (GrabCut's result may move with the OpenCV version).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from tests.unit.vision.photos import OBJECTS, load

HERE = Path(__file__).resolve().parent

Polygon = list[tuple[int, int]]


def _ellipse(centre: tuple[int, int], axes: tuple[int, int], angle: int) -> Polygon:
    points = cv2.ellipse2Poly(centre, axes, angle, 0, 360, 10)
    return [(int(x), int(y)) for x, y in points]


NOT_PERSON: dict[str, list[Polygon]] = {
    "astronaut": [_ellipse((390, 440), (112, 95), 0)],  # the helmet she holds
    "camera": [
        [(258, 136), (322, 136), (322, 178), (258, 178)],  # the camcorder
        [(286, 245), (302, 245), (302, 290), (286, 290)],  # the tripod's head
        [(272, 290), (512, 290), (512, 512), (162, 512), (162, 372), (215, 348)],  # its legs
    ],
    "grace_hopper": [
        [(380, 0), (512, 0), (512, 385), (450, 368), (400, 345), (380, 330)],  # the sky
        [(0, 0), (145, 0), (145, 310), (100, 345), (40, 385), (15, 450), (8, 600), (0, 600)],
        [(0, 0), (512, 0), (512, 14), (0, 14)],  # above the cap
    ],
}
PERSON: dict[str, list[Polygon]] = {"astronaut": [_ellipse((208, 222), (85, 62), 15)]}


def draw(name: str) -> npt.NDArray[np.bool_]:
    """The person mask of photo `name`, H×W bool."""
    cv2.setRNGSeed(0)  # GrabCut's k-means starts from OpenCV's global RNG
    bgr = np.ascontiguousarray(load(name)[..., ::-1])
    x1, y1, x2, y2 = (int(v) for v in OBJECTS[name][1])
    mask = np.zeros(bgr.shape[:2], np.uint8)
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    rect = (x1, y1, x2 - x1 - 1, y2 - y1 - 1)
    cv2.grabCut(bgr, mask, rect, background, foreground, 8, cv2.GC_INIT_WITH_RECT)
    for label, polygons in ((cv2.GC_BGD, NOT_PERSON[name]), (cv2.GC_FGD, PERSON.get(name, []))):
        for polygon in polygons:
            cv2.fillPoly(mask, [np.array(polygon, np.int32)], label)
    # The rectangle is ignored when starting from a mask.
    cv2.grabCut(bgr, mask, (0, 0, 0, 0), background, foreground, 8, cv2.GC_INIT_WITH_MASK)
    person: npt.NDArray[np.bool_] = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return person


def main() -> None:
    for name in NOT_PERSON:
        PILImage.fromarray(draw(name)).convert("1").save(HERE / f"{name}.png", optimize=True)


if __name__ == "__main__":
    main()
