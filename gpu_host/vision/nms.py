"""Non-maximum suppression on x1, y1, x2, y2 boxes (NumPy, any coordinate units)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Boxes = npt.NDArray[np.float32]
"""K×4: x1, y1, x2, y2."""
Indices = npt.NDArray[np.int64]


def iou(box: Boxes, others: Boxes) -> npt.NDArray[np.float32]:
    """IoU of one box (4,) with each of K boxes (K×4); 0 where a union is empty."""
    # Corners two at a time and `maximum` for the clamp: a third of the NumPy calls of one
    # per coordinate (and `np.clip`'s Python wrapper), on the hot path of every detector.
    top_left = np.maximum(box[:2], others[:, :2])
    bottom_right = np.minimum(box[2:], others[:, 2:])
    sides = np.maximum(bottom_right - top_left, 0)
    inter = sides[:, 0] * sides[:, 1]
    area = (box[2] - box[0]) * (box[3] - box[1])
    spans = others[:, 2:] - others[:, :2]
    areas = spans[:, 0] * spans[:, 1]
    union = area + areas - inter
    out = np.zeros(len(others), dtype=np.float32)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def _check(boxes: Boxes, scores: npt.NDArray[np.float32]) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be K×4, got shape {boxes.shape}")
    if scores.shape != (len(boxes),):
        raise ValueError(f"scores must be ({len(boxes)},), got shape {scores.shape}")


def nms(
    boxes: Boxes, scores: npt.NDArray[np.float32], iou_threshold: float, max_out: int = 100
) -> Indices:
    """Indices of the boxes kept, best score first: greedy, drops IoU > `iou_threshold`."""
    _check(boxes, scores)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_out:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        order = rest[iou(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def class_nms(
    boxes: Boxes,
    scores: npt.NDArray[np.float32],
    classes: npt.NDArray[np.int64],
    iou_threshold: float,
    max_out: int = 100,
) -> Indices:
    """NMS within each class only: boxes of different classes never suppress each other.

    Each class is shifted to its own region of the plane (offset larger than any box), so
    one greedy pass does every class at once.
    """
    _check(boxes, scores)
    if classes.shape != scores.shape:
        raise ValueError(f"classes must be ({len(boxes)},), got shape {classes.shape}")
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    span = float(np.max(np.abs(boxes))) * 2 + 1
    shifted = boxes + (classes.astype(np.float32) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_out)


def weighted_nms(
    boxes: Boxes, scores: npt.NDArray[np.float32], iou_threshold: float, max_out: int = 100
) -> tuple[Boxes, npt.NDArray[np.float32]]:
    """MediaPipe's blending suppression: each kept box is the score-weighted mean of the
    boxes that overlap the best remaining one by more than `iou_threshold`; its score is the
    best one's. Steadier boxes from frame to frame than greedy NMS."""
    _check(boxes, scores)
    order = np.argsort(-scores, kind="stable")
    kept_boxes: list[Boxes] = []
    kept_scores: list[float] = []
    while order.size and len(kept_boxes) < max_out:
        best = int(order[0])
        overlap = iou(boxes[best], boxes[order]) > iou_threshold
        overlap[0] = True
        group = order[overlap]
        weights = scores[group]
        if weights.sum() > 0:
            kept_boxes.append((boxes[group] * weights[:, None]).sum(axis=0) / weights.sum())
        else:  # all-zero scores: nothing to weight by
            kept_boxes.append(boxes[group].mean(axis=0))
        kept_scores.append(float(scores[best]))
        order = order[~overlap]
    if not kept_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.stack(kept_boxes).astype(np.float32), np.asarray(kept_scores, np.float32)
