"""Motion gating: reuse a session's last results when its frame barely changed.

The seed's pipeline named "optional motion estimation"; bench/motion.py measured OpenCV's
Farneback optical flow against a down-scaled mean absolute difference on the same frames
(docs/performance.md, "Motion gating"): the difference costs under a millisecond a frame, the
flow tens of milliseconds (50–110× more), and both save the same frames of a static clip and
none of a moving one. So the gate is the difference: each decoded frame shrinks to a 40×30
grayscale thumbnail, compared with the thumbnail of the last frame that was inferred (not
the last one seen: slow drift adds up until it crosses the threshold, then the frame is
inferred and becomes the new reference).

The decision is pure (`gate_decision`); the per-session state (`MotionMemory`) holds one
thumbnail and one frame's results, so it is bounded whatever the session does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from gpu_host.vision.types import Image, ModelOutput

THUMBNAIL_WH = (40, 30)
"""W×H the frames are compared at: small enough to average sensor noise and JPEG artefacts
away (each thumbnail pixel is the mean of ~250 pixels of a 640×480 frame), large enough that
a hand or a face moving across the view changes many of its pixels."""

DEFAULT_THRESHOLD = 2.0
"""Mean absolute difference (gray levels, 0..255) below which a frame counts as unchanged."""

Thumbnail = npt.NDArray[np.float32]


def thumbnail(image: Image) -> Thumbnail:
    """A frame (RGB) as a THUMBNAIL_WH grayscale float32 array. Gray first, then INTER_AREA:
    it averages each block (a box filter), so noise shrinks with the block size instead of
    being sampled; gray first is cheaper than resizing the three channels (docs/performance.md)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small: Thumbnail = cv2.resize(gray, THUMBNAIL_WH, interpolation=cv2.INTER_AREA).astype(
        np.float32
    )
    return small


def frame_difference(a: Thumbnail, b: Thumbnail) -> float:
    """Mean absolute difference of two thumbnails, in gray levels."""
    return float(np.abs(a - b).mean())


@dataclass(frozen=True, slots=True)
class Reference:
    """The last inferred frame of a session, and what it gave."""

    thumbnail: Thumbnail
    size: tuple[int, int]
    """W×H of the frame as sent: a different size is never the same view."""
    models: tuple[str, ...]
    outputs: tuple[ModelOutput, ...]


def gate_decision(
    reference: Reference | None,
    current: Thumbnail,
    *,
    size: tuple[int, int],
    models: tuple[str, ...],
    threshold: float,
) -> bool:
    """True: reuse `reference`'s results for the frame whose thumbnail is `current`.

    A first frame (no reference), another frame size or another model set is always
    inferred; otherwise the frame is reused when its difference is strictly below
    `threshold` (a threshold of 0 never reuses)."""
    if reference is None or reference.size != size or reference.models != models:
        return False
    return frame_difference(reference.thumbnail, current) < threshold


@dataclass(slots=True)
class MotionMemory:
    """One session's gate state: at most one reference frame."""

    reference: Reference | None = None

    def remember(
        self,
        current: Thumbnail,
        *,
        size: tuple[int, int],
        models: tuple[str, ...],
        outputs: tuple[ModelOutput, ...],
    ) -> None:
        self.reference = Reference(current, size, models, outputs)

    def forget(self) -> None:
        """A frame whose results are incomplete (a model late) is no reference to reuse."""
        self.reference = None
