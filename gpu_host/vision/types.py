"""Result types shared by every model's post-processing and by the WebSocket protocol.

Every coordinate is normalized to 0..1 of the *frame* the client sent (not of the model's
input), so a post-processor maps back through the `Letterbox` it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Box = tuple[float, float, float, float]
"""x1, y1, x2, y2, normalized to 0..1 of the frame."""

Image = npt.NDArray[np.uint8]
"""H×W×3 RGB, uint8."""

Tensors = Mapping[str, npt.NDArray[Any]]
"""Named tensors of ONE item (no batch dimension)."""


@dataclass(frozen=True, slots=True)
class Detection:
    model: str
    label: str
    score: float
    box: Box


@dataclass(frozen=True, slots=True)
class Keypoints:
    model: str
    points: tuple[tuple[float, float, float], ...]
    """(x, y, score) per keypoint, x and y normalized to the frame."""


@dataclass(frozen=True, slots=True)
class TextRead:
    model: str
    text: str
    box: Box
    score: float


MASK_MAX_SIDE = 96
"""The largest width or height of a `Mask.bitmap`: producers downsample to fit. A mask is
drawn stretched over its box, so more cells than this buy nothing at 320×240 frames."""


@dataclass(frozen=True, slots=True, eq=False)
class Mask:
    """Where one thing is, cell by cell: a boolean bitmap stretched over `box`.

    A segmentation model's whole-frame mask has `box` (0, 0, 1, 1); an instance mask (a
    YOLO segment export) covers its detection's box. Row 0 is the box's top edge.
    """

    model: str
    label: str
    score: float
    box: Box
    bitmap: npt.NDArray[np.bool_]
    """H×W, True inside the thing; 1 ≤ H, W ≤ `MASK_MAX_SIDE`."""

    def __post_init__(self) -> None:
        if self.bitmap.ndim != 2 or self.bitmap.dtype != np.bool_:
            raise ValueError(
                f"mask bitmap must be 2-D bool, got {self.bitmap.dtype}{self.bitmap.shape}"
            )
        h, w = self.bitmap.shape
        if not (1 <= h <= MASK_MAX_SIDE and 1 <= w <= MASK_MAX_SIDE):
            raise ValueError(f"mask bitmap {h}x{w} exceeds {MASK_MAX_SIDE} per side")


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """What one model contributed to one frame's result."""

    detections: tuple[Detection, ...] = ()
    keypoints: tuple[Keypoints, ...] = ()
    texts: tuple[TextRead, ...] = ()
    masks: tuple[Mask, ...] = ()


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was fitted into a model input: resized by `scale`, then padded.

    A point (u, v) in model-input pixels maps to frame pixels as
    ((u - pad_x) / scale, (v - pad_y) / scale).
    """

    scale: float
    pad_x: float
    pad_y: float
    src_w: int
    src_h: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_frame(self, u: float, v: float) -> tuple[float, float]:
        """Model-input pixels → normalized frame coordinates, clamped to 0..1."""
        x = (u - self.pad_x) / self.scale / self.src_w
        y = (v - self.pad_y) / self.scale / self.src_h
        return (min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0))


class Processor(Protocol):
    """One model's pure pre/post-processing, as the backend's pipeline drives it."""

    model: str

    def preprocess(self, image: Image) -> tuple[dict[str, npt.NDArray[Any]], Letterbox]:
        """Frame → the model's named input tensors (no batch dimension) and the mapping back."""
        ...

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        """The model's named output tensors (no batch dimension) → results in frame coordinates."""
        ...


@runtime_checkable
class FixedInput(Protocol):
    """A processor whose model takes a fixed height×width (letterboxed) image: the backend
    may then decode a large frame at a reduced size that still covers it."""

    @property
    def input_hw(self) -> tuple[int, int]: ...


@runtime_checkable
class RegionProcessor(Processor, Protocol):
    """A processor that also takes one region of a frame as an item (OCR: a text line)."""

    def preprocess_region(
        self, image: Image, box: Box
    ) -> tuple[dict[str, npt.NDArray[Any]], Letterbox]:
        """One region (normalized x1, y1, x2, y2 of the frame) → one item's input tensors."""
        ...
