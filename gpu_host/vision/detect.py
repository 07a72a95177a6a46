"""Object detection with NanoDet-m (COCO 80 classes): letterbox in, labelled boxes out.

NanoDet's GFL head predicts, for every cell of three grids (strides 8, 16, 32), a sigmoid
score per class and, for each side of the box (left, top, right, bottom), a distribution over
0..reg_max cells; the distance to that side is the distribution's expectation times the
stride, measured from the cell centre.

The served graph does that decoding itself and returns its `top_k` best (cell, class) pairs
as `detections` [top_k, 6] (x1, y1, x2, y2 in input pixels, score, class; see
`gpu_host.models.convert.box_head`); the backend keeps those above the threshold and runs
the per-class suppression. `grid_candidates` is the same decoding in NumPy from the raw
grids: the reference the graph is checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpu_host.vision.coco import COCO_LABELS
from gpu_host.vision.letterbox import SquareImageInput, box_to_frame
from gpu_host.vision.nms import class_nms
from gpu_host.vision.tensors import output
from gpu_host.vision.types import Detection, Letterbox, ModelOutput, Tensors

MODEL = "detect"
OUTPUT = "detections"


@dataclass(frozen=True, slots=True)
class DetectParams:
    score_threshold: float = 0.25
    """Class score below which a candidate is dropped. NanoDet's scores are IoU-aware (GFL),
    so lower than plain confidences: its demo keeps >= 0.35, which loses real objects the
    small model is unsure of (the espresso cup in scikit-image's `coffee` scores 0.27)."""
    iou_threshold: float = 0.6
    """Overlap above which the weaker box of the same class is suppressed (NanoDet's 0.6)."""
    max_candidates: int = 1000
    """Best (cell, class) pairs kept before NMS, so a noisy frame cannot stall the loop. The
    served graph returns `gpu_host.models.spec.DETECT_TOP_K` (1000) of them: more cannot be
    had from it."""
    max_detections: int = 100


class NanoDetProcessor(SquareImageInput):
    """`Processor` for the `detect` model."""

    model = MODEL

    def __init__(
        self,
        *,
        size: int = 416,
        strides: Sequence[int] = (8, 16, 32),
        reg_max: int = 10,
        labels: Sequence[str] = COCO_LABELS,
        params: DetectParams | None = None,
    ) -> None:
        if any(size % s for s in strides):
            raise ValueError(f"size {size} is not a multiple of every stride {tuple(strides)}")
        self.size = size
        self.strides = tuple(strides)
        self.reg_max = reg_max
        self.labels = tuple(labels)
        self.params = params or DetectParams()
        self._bins = np.arange(reg_max + 1, dtype=np.float32)
        self._centres = {s: _cell_centres(size // s, s) for s in self.strides}

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        found = output(MODEL, outputs, OUTPUT, (None, 6))
        return self.detections(*head_candidates(found, self.params), letterbox)

    def detections(
        self,
        boxes: npt.NDArray[np.float32],
        scores: npt.NDArray[np.float32],
        classes: npt.NDArray[np.int64],
        letterbox: Letterbox,
    ) -> ModelOutput:
        """Candidates (best first) → per-class suppression → labelled boxes in the frame."""
        keep = class_nms(
            boxes, scores, classes, self.params.iou_threshold, self.params.max_detections
        )
        detections = []
        for i in keep:
            box = box_to_frame(letterbox, *(float(v) for v in boxes[i]))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue  # entirely inside the padding
            label = self.labels[int(classes[i])]
            detections.append(Detection(MODEL, label, float(scores[i]), box))
        return ModelOutput(detections=tuple(detections))

    def grid_candidates(
        self, outputs: Tensors
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The raw grids (`cls_{s}`, `reg_{s}`) → the candidates `head_candidates` gets from
        the graph's `detections`: boxes above the threshold, best first (stable), at most
        `max_candidates`. The NumPy reference of the in-graph decoding."""
        boxes, scores, classes = [], [], []
        for stride in self.strides:
            cells = (self.size // stride) ** 2
            cls = output(MODEL, outputs, f"cls_{stride}", (cells, len(self.labels)))
            reg = output(MODEL, outputs, f"reg_{stride}", (cells, 4 * (self.reg_max + 1)))
            cell, klass = np.nonzero(cls > self.params.score_threshold)
            boxes.append(self._decode(reg[cell], self._centres[stride][cell], stride))
            scores.append(cls[cell, klass])
            classes.append(klass)
        all_scores = np.concatenate(scores)
        best = np.argsort(-all_scores, kind="stable")[: self.params.max_candidates]
        return (
            np.concatenate(boxes)[best],
            all_scores[best],
            np.concatenate(classes)[best].astype(np.int64),
        )

    def _decode(
        self, reg: npt.NDArray[np.float32], centres: npt.NDArray[np.float32], stride: int
    ) -> npt.NDArray[np.float32]:
        """Distribution logits (K, 4·(reg_max+1)) → boxes (K, 4) in input pixels."""
        logits = reg.reshape(-1, 4, self.reg_max + 1)
        exp = np.exp(logits - logits.max(axis=2, keepdims=True))
        distances = (exp / exp.sum(axis=2, keepdims=True)) @ self._bins * stride
        x1y1 = centres - distances[:, :2]
        x2y2 = centres + distances[:, 2:]
        return np.concatenate([x1y1, x2y2], axis=1).astype(np.float32)


def head_candidates(
    found: npt.NDArray[np.float32], params: DetectParams
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The graph's `detections` (best first) → boxes, scores and classes above the threshold,
    at most `max_candidates`."""
    above = found[found[:, 4] > params.score_threshold][: params.max_candidates]
    return (
        np.ascontiguousarray(above[:, :4]),
        np.ascontiguousarray(above[:, 4]),
        above[:, 5].astype(np.int64),
    )


def _cell_centres(grid: int, stride: int) -> npt.NDArray[np.float32]:
    """(grid², 2) x, y centres of the cells, row-major, in input pixels."""
    ys, xs = np.mgrid[0:grid, 0:grid]
    # NanoDet-m (the legacy GFL head) measures from the cell's centre, hence + 0.5.
    return np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1).astype(np.float32) * stride
