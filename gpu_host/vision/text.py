"""Text detection (PP-OCRv4 DB detector): letterbox in, axis-aligned text boxes out.

Post-processing follows Differentiable Binarization as PaddleOCR ships it: threshold the
probability map, take contours of the (slightly dilated) mask, score each rotated box by the
mean probability inside it, and grow ("unclip") the box, since DB is trained to predict a
shrunk text kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from gpu_host.vision.letterbox import letterbox
from gpu_host.vision.types import Detection, Image, Letterbox, ModelOutput, Tensors

MODEL = "text"
LABEL = "text"


@dataclass(frozen=True, slots=True)
class DbParams:
    """DB post-processing knobs (PaddleOCR's defaults for PP-OCRv4, as rapidocr uses them)."""

    thresh: float = 0.3
    """Pixel probability above which a pixel is text."""
    box_thresh: float = 0.5
    """Mean probability inside a box below which the box is dropped."""
    unclip_ratio: float = 1.6
    """How far to grow a kernel: offset = area × ratio / perimeter."""
    min_side: float = 3.0
    """Boxes thinner than this (model-input pixels) are noise."""
    max_boxes: int = 100
    """Cap on candidates per frame, so a pathological map cannot stall the loop."""


class TextProcessor:
    """`Processor` for the `text` model: uint8 RGB letterbox → `prob` map → `text` detections."""

    model = MODEL

    def __init__(
        self,
        *,
        height: int = 256,
        width: int = 320,
        input_name: str = "image",
        output_name: str = "prob",
        params: DbParams | None = None,
    ) -> None:
        self.height = height
        self.width = width
        self.input_name = input_name
        self.output_name = output_name
        self.params = params or DbParams()

    @property
    def input_hw(self) -> tuple[int, int]:
        return (self.height, self.width)

    def preprocess(self, image: Image) -> tuple[dict[str, npt.NDArray[Any]], Letterbox]:
        canvas, box = letterbox(image, self.height, self.width)
        return {self.input_name: canvas}, box

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        prob = np.asarray(outputs[self.output_name], dtype=np.float32).reshape(
            self.height, self.width
        )
        boxes = db_boxes(prob, self.params)
        detections = []
        for corners, score in boxes:
            mapped = [letterbox.to_frame(float(u), float(v)) for u, v in corners]
            xs = [p[0] for p in mapped]
            ys = [p[1] for p in mapped]
            box = (min(xs), min(ys), max(xs), max(ys))
            if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
                continue  # entirely inside the padding
            detections.append(Detection(model=MODEL, label=LABEL, score=score, box=box))
        # Reading order (top to bottom, then left to right) is what an OCR stage wants.
        detections.sort(key=lambda d: (round(d.box[1], 2), d.box[0]))
        return ModelOutput(detections=tuple(detections))


Corners = npt.NDArray[np.float32]
"""4×2 corners of a rotated box, in model-input pixels."""


def db_boxes(prob: npt.NDArray[np.float32], params: DbParams) -> list[tuple[Corners, float]]:
    """Rotated text boxes and their scores from one H×W probability map (model-input pixels)."""
    mask = (prob > params.thresh).astype(np.uint8)
    # A 2×2 dilation joins characters the thresholding split apart (PaddleOCR's use_dilation).
    dilated = cv2.dilate(mask, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(dilated, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found: list[tuple[Corners, float]] = []
    for contour in contours[: params.max_boxes]:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < params.min_side:
            continue
        corners = cv2.boxPoints(rect).astype(np.float32)
        score = box_score(prob, corners)
        if score < params.box_thresh:
            continue
        grown = unclip(rect, params.unclip_ratio)
        if min(grown[1]) < params.min_side + 2:
            continue
        found.append((cv2.boxPoints(grown).astype(np.float32), score))
    return found


RotatedRect = tuple[Sequence[float], Sequence[float], float]
"""OpenCV's ((cx, cy), (w, h), angle)."""


def unclip(rect: RotatedRect, ratio: float) -> RotatedRect:
    """Grow a rotated rectangle by DB's offset distance `area × ratio / perimeter` on every side.

    PaddleOCR offsets the polygon with pyclipper (round joins) and then takes the minimum-area
    rectangle of the result; for a rectangle input that is exactly each side + 2 × distance.
    """
    (cx, cy), (w, h), angle = rect
    perimeter = 2.0 * (w + h)
    if perimeter <= 0:
        return rect
    distance = w * h * ratio / perimeter
    return ((cx, cy), (w + 2 * distance, h + 2 * distance), angle)


def box_score(prob: npt.NDArray[np.float32], corners: Corners) -> float:
    """Mean probability inside the polygon `corners` (PaddleOCR's "fast" score mode)."""
    h, w = prob.shape
    xmin = int(np.clip(np.floor(corners[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(corners[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(corners[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(corners[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted = corners - np.array([xmin, ymin], dtype=np.float32)
    cv2.fillPoly(mask, [shifted.round().astype(np.int32)], 1)
    return float(cv2.mean(prob[ymin : ymax + 1, xmin : xmax + 1], mask)[0])
