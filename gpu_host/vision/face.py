"""Face detection with MediaPipe BlazeFace (short range): letterbox in, `face` boxes out.

BlazeFace regresses each of 896 fixed SSD anchors: a centre offset and a size (in input
pixels), six landmarks, and a logit. Decoding, thresholds and the blending NMS follow
MediaPipe's `face_detection_short_range` graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpu_host.vision.letterbox import SquareImageInput, box_to_frame
from gpu_host.vision.nms import weighted_nms
from gpu_host.vision.tensors import output
from gpu_host.vision.types import Detection, Letterbox, ModelOutput, Tensors

MODEL = "face"
LABEL = "face"
LOGIT_MARGIN = 0.01
"""Below the threshold's logit by this much, no float32 score can round up to the threshold."""


@dataclass(frozen=True, slots=True)
class FaceParams:
    score_threshold: float = 0.5
    iou_threshold: float = 0.3
    max_faces: int = 20
    score_clip: float = 100.0
    """Logits are clipped before the sigmoid, as MediaPipe does (no overflow warnings)."""


def ssd_anchors(
    size: int = 128,
    strides: Sequence[int] = (8, 16, 16, 16),
    anchors_per_layer: int = 2,
) -> npt.NDArray[np.float32]:
    """Anchor centres (A, 2), x and y in 0..1, in the order the model emits its boxes.

    MediaPipe's SsdAnchorsCalculator with fixed-size anchors: consecutive layers of equal
    stride share one grid, each contributing `anchors_per_layer` anchors per cell (aspect
    ratio 1 plus the interpolated scale), all centred at (cell + 0.5) / grid.
    """
    centres: list[npt.NDArray[np.float32]] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer < len(strides) and strides[layer] == stride:
            same += 1
            layer += 1
        grid = -(-size // stride)  # ceil
        ys, xs = np.mgrid[0:grid, 0:grid]
        cell = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1) / grid
        centres.append(np.repeat(cell, same * anchors_per_layer, axis=0).astype(np.float32))
    return np.concatenate(centres)


class BlazeFaceProcessor(SquareImageInput):
    """`Processor` for the `face` model."""

    model = MODEL

    def __init__(self, *, size: int = 128, params: FaceParams | None = None) -> None:
        self.size = size
        self.params = params or FaceParams()
        self.anchors = ssd_anchors(size)
        threshold = min(max(self.params.score_threshold, 1e-6), 1 - 1e-6)
        self._logit_floor = math.log(threshold / (1 - threshold)) - LOGIT_MARGIN

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        count = len(self.anchors)
        raw = output(MODEL, outputs, "boxes", (count, 16))
        logits = output(MODEL, outputs, "scores", (count, 1))[:, 0]
        # Only anchors whose logit is near the threshold's or above can pass it: the sigmoid
        # runs on those few instead of all 896 (the same scores, bit for bit, as before).
        near = np.flatnonzero(logits >= self._logit_floor)
        # Clipped as MediaPipe does, at +score_clip (float64: exp(100) fits); these logits are
        # all above the threshold's, far above -score_clip.
        clipped = np.minimum(logits[near].astype(np.float64), self.params.score_clip)
        scores = (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)
        hit = scores >= self.params.score_threshold
        chosen = near[hit]
        boxes = self._decode(raw[chosen], self.anchors[chosen])
        kept, kept_scores = weighted_nms(
            boxes, scores[hit], self.params.iou_threshold, self.params.max_faces
        )
        detections = []
        for box, score in zip(kept, kept_scores, strict=True):
            frame_box = box_to_frame(letterbox, *(float(v) for v in box))
            if frame_box[2] > frame_box[0] and frame_box[3] > frame_box[1]:
                detections.append(Detection(MODEL, LABEL, float(score), frame_box))
        return ModelOutput(detections=tuple(detections))

    def _decode(
        self, raw: npt.NDArray[np.float32], anchors: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """Regressions (K, 16) at their anchors → boxes (K, 4) in input pixels."""
        centre = raw[:, :2] + anchors * self.size  # offsets are in input pixels
        half = raw[:, 2:4] / 2
        return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
