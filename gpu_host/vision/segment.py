"""Person segmentation with MediaPipe Selfie Segmentation: letterbox in, one `person` mask out.

The model gives a person probability for every pixel of its 256×256 input. The mask covers
the whole frame (box 0, 0, 1, 1): the letterbox padding is cropped away, the probabilities
are area-averaged down to at most `SegmentParams.max_width` cells wide (the frame's aspect
kept, at most `MASK_MAX_SIDE` per side) and then thresholded, so each cell says whether
most of the pixels it covers are a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from gpu_host.vision.letterbox import SquareImageInput
from gpu_host.vision.tensors import Floats, output
from gpu_host.vision.types import MASK_MAX_SIDE, Letterbox, Mask, ModelOutput, Tensors

MODEL = "segment"
LABEL = "person"
WHOLE_FRAME = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class SegmentParams:
    threshold: float = 0.5
    """A cell is a person when its mean probability is at least this."""
    max_width: int = 64
    """Cells across: a 320×240 frame drawn at 5 px a cell; the height follows the aspect."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold {self.threshold} must be in (0, 1)")
        if not 1 <= self.max_width <= MASK_MAX_SIDE:
            raise ValueError(f"max_width {self.max_width} must be in 1..{MASK_MAX_SIDE}")


def content_region(box: Letterbox, height: int, width: int) -> tuple[int, int, int, int]:
    """Where the frame lies in the height×width input: x0, y0, x1, y1 (end exclusive).

    The same rounding as `letterbox`, which placed it there.
    """
    new_w = min(width, max(1, round(box.src_w * box.scale)))
    new_h = min(height, max(1, round(box.src_h * box.scale)))
    x0, y0 = int(box.pad_x), int(box.pad_y)
    return x0, y0, x0 + new_w, y0 + new_h


def mask_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """Cells (w, h) for a width×height region: at most `max_width` across and
    `MASK_MAX_SIDE` down, the aspect kept, never more cells than the region's pixels."""
    factor = min(1.0, max_width / width, MASK_MAX_SIDE / height)
    return max(1, round(width * factor)), max(1, round(height * factor))


def frame_mask(
    prob: Floats, box: Letterbox, params: SegmentParams
) -> tuple[npt.NDArray[np.bool_], Floats]:
    """A probability map over the whole input → the bitmap over the frame and the cells'
    mean probabilities (both h×w)."""
    x0, y0, x1, y1 = content_region(box, *prob.shape)
    crop = prob[y0:y1, x0:x1]
    # A frame smaller than the input was scaled up: its own pixels are all there is to see.
    width, height = min(crop.shape[1], box.src_w), min(crop.shape[0], box.src_h)
    cells_w, cells_h = mask_size(width, height, params.max_width)
    # INTER_AREA averages every pixel a cell covers (a majority vote after the threshold).
    cells: Floats = cv2.resize(crop, (cells_w, cells_h), interpolation=cv2.INTER_AREA)  # type: ignore[assignment]
    return cells >= params.threshold, cells


class SelfieSegmentProcessor(SquareImageInput):
    """`Processor` for the `segment` model."""

    model = MODEL

    def __init__(self, *, size: int = 256, params: SegmentParams | None = None) -> None:
        self.size = size
        self.params = params or SegmentParams()

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        prob = output(MODEL, outputs, "mask", (self.size, self.size, 1))[:, :, 0]
        bitmap, cells = frame_mask(np.ascontiguousarray(prob), letterbox, self.params)
        if not bitmap.any():
            return ModelOutput()
        score = float(cells[bitmap].mean())
        return ModelOutput(masks=(Mask(MODEL, LABEL, score, WHOLE_FRAME, bitmap),))
