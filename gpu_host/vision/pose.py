"""Single-person pose with MoveNet Lightning: letterbox in, 17 COCO keypoints out.

The graph decodes its own heatmaps (see `gpu_host.models.convert.movenet`) and returns, per
keypoint, (y, x, score) with y and x in 0..1 of the square model input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpu_host.vision.letterbox import SquareImageInput
from gpu_host.vision.tensors import output
from gpu_host.vision.types import Keypoints, Letterbox, ModelOutput, Tensors

MODEL = "pose"

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
"""COCO keypoint order, which MoveNet emits ("left" is the person's left)."""


@dataclass(frozen=True, slots=True)
class PoseParams:
    min_pose_score: float = 0.2
    """Mean keypoint score below which no person is reported. MoveNet always places all 17
    keypoints; on frames without a person their mean score stays around 0.1."""


class MoveNetProcessor(SquareImageInput):
    """`Processor` for the `pose` model."""

    model = MODEL

    def __init__(self, *, size: int = 192, params: PoseParams | None = None) -> None:
        self.size = size
        self.params = params or PoseParams()

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        raw = output(MODEL, outputs, "keypoints", (1, len(KEYPOINT_NAMES), 3))[0]
        if float(np.mean(raw[:, 2])) < self.params.min_pose_score:
            return ModelOutput()
        points = tuple(
            (*letterbox.to_frame(float(x) * self.size, float(y) * self.size), float(score))
            for y, x, score in raw
        )
        return ModelOutput(keypoints=(Keypoints(MODEL, points),))
