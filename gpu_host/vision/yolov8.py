"""Adapter for a user's own Ultralytics YOLOv8 ONNX export (`yolo export format=onnx`).

No YOLO weights ship with Spinup (Ultralytics' are AGPL-3.0); this decodes the export's
layouts so that a user can serve their model:

- detect: `output0` [N, 4 + classes, anchors]: cx, cy, w, h (input pixels), class scores
- pose:   `output0` [N, 4 + 1 + K·3, anchors]: cx, cy, w, h, person score, K × (x, y, visibility)

The export takes `images`: float32 [N, 3, size, size], RGB in 0..1, letterboxed with grey
114 padding. With `uint8_input=True` the processor sends uint8 [size, size, 3] instead, for
a graph given a uint8 prefix (see `gpu_host.models.convert.graph.add_uint8_prefix`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from gpu_host.vision.coco import COCO_LABELS
from gpu_host.vision.letterbox import box_to_frame, letterbox
from gpu_host.vision.nms import class_nms
from gpu_host.vision.tensors import output
from gpu_host.vision.types import (
    Detection,
    Image,
    Keypoints,
    Letterbox,
    ModelOutput,
    Tensors,
)

Task = Literal["detect", "pose"]
PAD = 114
"""Ultralytics letterboxes with this grey."""


@dataclass(frozen=True, slots=True)
class YoloParams:
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_candidates: int = 3000
    """Best anchors kept before NMS, so a noisy frame cannot stall the loop."""
    max_detections: int = 100


class Yolov8Processor:
    """`Processor` for a YOLOv8 detect or pose export."""

    def __init__(
        self,
        *,
        model: str = "yolov8",
        task: Task = "detect",
        labels: Sequence[str] | None = None,
        num_keypoints: int = 17,
        size: int = 640,
        input_name: str = "images",
        output_name: str = "output0",
        uint8_input: bool = False,
        params: YoloParams | None = None,
    ) -> None:
        if task not in ("detect", "pose"):
            raise ValueError(f"{model}: task must be 'detect' or 'pose', got {task!r}")
        self.model = model
        self.task = task
        default = COCO_LABELS if task == "detect" else ("person",)
        self.labels = tuple(labels if labels is not None else default)
        if not self.labels:
            raise ValueError(f"{model}: labels must not be empty")
        self.num_keypoints = num_keypoints
        self.size = size
        self.input_name = input_name
        self.output_name = output_name
        self.uint8_input = uint8_input
        self.params = params or YoloParams()

    @property
    def channels(self) -> int:
        """Rows of the output tensor that this layout expects."""
        if self.task == "detect":
            return 4 + len(self.labels)
        return 4 + 1 + 3 * self.num_keypoints

    @property
    def input_hw(self) -> tuple[int, int]:
        return (self.size, self.size)

    def preprocess(self, image: Image) -> tuple[dict[str, npt.NDArray[Any]], Letterbox]:
        canvas, box = letterbox(image, self.size, self.size, pad=PAD)
        if self.uint8_input:
            return {self.input_name: canvas}, box
        chw = np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32) / 255.0
        return {self.input_name: chw}, box

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        preds = output(self.model, outputs, self.output_name, (self.channels, None)).T
        if self.task == "detect":
            class_scores = preds[:, 4:]
            classes = class_scores.argmax(axis=1)
            scores = class_scores[np.arange(len(preds)), classes]
        else:
            classes = np.zeros(len(preds), dtype=np.int64)
            scores = preds[:, 4]
        hit = np.nonzero(scores > self.params.score_threshold)[0]
        hit = hit[np.argsort(-scores[hit], kind="stable")[: self.params.max_candidates]]
        boxes = _xyxy(preds[hit, :4])
        keep = hit[
            class_nms(
                boxes,
                scores[hit].astype(np.float32),
                classes[hit].astype(np.int64),
                self.params.iou_threshold,
                self.params.max_detections,
            )
        ]
        detections: list[Detection] = []
        poses: list[Keypoints] = []
        for i in keep:
            box = box_to_frame(letterbox, *(float(v) for v in _xyxy(preds[i : i + 1, :4])[0]))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue  # entirely inside the padding
            label = self.labels[int(classes[i])]
            detections.append(Detection(self.model, label, float(scores[i]), box))
            if self.task == "pose":
                poses.append(self._keypoints(preds[i, 5:], letterbox))
        return ModelOutput(detections=tuple(detections), keypoints=tuple(poses))

    def _keypoints(self, raw: npt.NDArray[np.float32], letterbox: Letterbox) -> Keypoints:
        points = tuple(
            (*letterbox.to_frame(float(x), float(y)), float(v))
            for x, y, v in raw.reshape(self.num_keypoints, 3)
        )
        return Keypoints(self.model, points)


def _xyxy(cxcywh: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    centre, half = cxcywh[:, :2], cxcywh[:, 2:4] / 2
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
