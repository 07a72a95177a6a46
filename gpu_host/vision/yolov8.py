"""Adapter for a user's own Ultralytics YOLOv8 ONNX export (`yolo export format=onnx`).

No YOLO weights ship with Spinup (Ultralytics' are AGPL-3.0); this decodes the export's
layouts so that a user can serve their model:

- detect:  `output0` [N, 4 + classes, anchors]: cx, cy, w, h (input pixels), class scores
- segment: `output0` [N, 4 + classes + M, anchors]: as detect, then M mask coefficients;
           `output1` [N, M, S/4, S/4]: the prototype masks (M = 32)
- pose:    `output0` [N, 4 + 1 + K·3, anchors]: cx, cy, w, h, person score, K × (x, y, visibility)

A segment detection's mask is sigmoid(coefficients · prototypes) > 0.5, as Ultralytics
computes it, taken at the prototypes' resolution over the detection's box only. TFLite
exports give coordinates in 0..1 of the input (`normalized_coordinates=True`).

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
    MASK_MAX_SIDE,
    Detection,
    Image,
    Keypoints,
    Letterbox,
    Mask,
    ModelOutput,
    Tensors,
)

Task = Literal["detect", "segment", "pose"]
PROTO_STRIDE = 4
"""Input pixels per prototype-mask cell, on each side."""
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
        protos_name: str = "output1",
        num_masks: int = 32,
        uint8_input: bool = False,
        normalized_coordinates: bool = False,
        params: YoloParams | None = None,
    ) -> None:
        if task not in ("detect", "segment", "pose"):
            raise ValueError(f"{model}: task must be detect, segment or pose, got {task!r}")
        if task == "segment" and size % PROTO_STRIDE:
            raise ValueError(f"{model}: size {size} is not a multiple of {PROTO_STRIDE}")
        self.model = model
        self.task = task
        default = ("person",) if task == "pose" else COCO_LABELS
        self.labels = tuple(labels if labels is not None else default)
        if not self.labels:
            raise ValueError(f"{model}: labels must not be empty")
        self.num_keypoints = num_keypoints
        self.size = size
        self.input_name = input_name
        self.output_name = output_name
        self.protos_name = protos_name
        self.num_masks = num_masks
        self.uint8_input = uint8_input
        # Coordinates in 0..1 of the input are scaled back to input pixels first.
        self._scale = float(size) if normalized_coordinates else 1.0
        self.params = params or YoloParams()

    @property
    def channels(self) -> int:
        """Rows of the output tensor that this layout expects."""
        if self.task == "detect":
            return 4 + len(self.labels)
        if self.task == "segment":
            return 4 + len(self.labels) + self.num_masks
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
        if self.task == "pose":
            classes = np.zeros(len(preds), dtype=np.int64)
            scores = preds[:, 4]
        else:
            class_scores = preds[:, 4 : 4 + len(self.labels)]
            classes = class_scores.argmax(axis=1)
            scores = class_scores[np.arange(len(preds)), classes]
        hit = np.nonzero(scores > self.params.score_threshold)[0]
        hit = hit[np.argsort(-scores[hit], kind="stable")[: self.params.max_candidates]]
        boxes = _xyxy(preds[hit, :4] * self._scale)
        kept = class_nms(
            boxes,
            scores[hit].astype(np.float32),
            classes[hit].astype(np.int64),
            self.params.iou_threshold,
            self.params.max_detections,
        )
        detections: list[Detection] = []
        found: list[int] = []
        for k in kept:
            box = box_to_frame(letterbox, *(float(v) for v in boxes[k]))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue  # entirely inside the padding
            i = int(hit[k])
            label = self.labels[int(classes[i])]
            detections.append(Detection(self.model, label, float(scores[i]), box))
            found.append(i)
        poses = (
            tuple(self._keypoints(preds[i, 5:], letterbox) for i in found)
            if self.task == "pose"
            else ()
        )
        masks: tuple[Mask, ...] = ()
        if self.task == "segment" and found:
            masks = self._masks(outputs, preds[found, -self.num_masks :], detections, letterbox)
        return ModelOutput(
            detections=tuple(detections),
            keypoints=poses,
            masks=masks,
        )

    def _keypoints(self, raw: npt.NDArray[np.float32], letterbox: Letterbox) -> Keypoints:
        xyv = raw.reshape(self.num_keypoints, 3)
        points = tuple(
            (*letterbox.to_frame(float(x) * self._scale, float(y) * self._scale), float(v))
            for x, y, v in xyv
        )
        return Keypoints(self.model, points)

    def _masks(
        self,
        outputs: Tensors,
        coeffs: npt.NDArray[np.float32],
        detections: list[Detection],
        letterbox: Letterbox,
    ) -> tuple[Mask, ...]:
        """One instance mask per detection, over its (frame-clamped) box.

        Every detection's full mask comes from one matrix product (K × M by M × cells); each
        then keeps the prototype cells its box covers, sampled at the cell centres of a grid
        of at most `MASK_MAX_SIDE` per side (the prototype grid itself when it fits).
        sigmoid(x) > 0.5 is x > 0: no exponential is needed.
        """
        side = self.size // PROTO_STRIDE
        protos = output(self.model, outputs, self.protos_name, (self.num_masks, side, side))
        logits = (coeffs @ protos.reshape(self.num_masks, side * side)).reshape(-1, side, side)
        masks = []
        for logit, detection in zip(logits, detections, strict=True):
            rows = _cells(*_input_span(detection.box[1], detection.box[3], letterbox, "y"), side)
            cols = _cells(*_input_span(detection.box[0], detection.box[2], letterbox, "x"), side)
            bitmap = logit[np.ix_(rows, cols)] > 0
            masks.append(Mask(self.model, detection.label, detection.score, detection.box, bitmap))
        return tuple(masks)


def _input_span(lo: float, hi: float, letterbox: Letterbox, axis: str) -> tuple[float, float]:
    """A normalized frame interval along `axis` → input pixels (the inverse of `to_frame`)."""
    src, pad = (
        (letterbox.src_w, letterbox.pad_x) if axis == "x" else (letterbox.src_h, letterbox.pad_y)
    )
    return (lo * src * letterbox.scale + pad, hi * src * letterbox.scale + pad)


def _cells(lo: float, hi: float, side: int) -> npt.NDArray[np.intp]:
    """The prototype cells (indices along one axis) sampled for the input-pixel span lo..hi:
    as many as the span covers (at least 1, at most `MASK_MAX_SIDE`), each the cell under an
    evenly spaced sample's centre."""
    first, last = lo / PROTO_STRIDE, hi / PROTO_STRIDE
    count = int(np.clip(np.ceil(last) - np.floor(first), 1, MASK_MAX_SIDE))
    centres = first + (np.arange(count) + 0.5) * (last - first) / count
    return np.clip(np.floor(centres).astype(np.intp), 0, side - 1)


def _xyxy(cxcywh: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    centre, half = cxcywh[:, :2], cxcywh[:, 2:4] / 2
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
