"""Suppression: greedy, per class, and MediaPipe's weighted blending."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from gpu_host.vision.nms import class_nms, iou, nms, weighted_nms

BOXES = np.array(
    [
        [0, 0, 10, 10],  # A
        [1, 1, 11, 11],  # overlaps A (IoU 0.68)
        [20, 20, 30, 30],  # apart
        [0, 0, 10, 5],  # half of A (IoU 0.5)
    ],
    np.float32,
)
SCORES = np.array([0.9, 0.8, 0.7, 0.6], np.float32)


def test_iou() -> None:
    np.testing.assert_allclose(iou(BOXES[0], BOXES), [1.0, 81 / 119, 0.0, 0.5], rtol=1e-6)


def test_iou_of_empty_boxes_is_zero() -> None:
    empty = np.array([[5, 5, 5, 5]], np.float32)
    assert iou(empty[0], empty).tolist() == [0.0]


@pytest.mark.parametrize(
    ("threshold", "kept"),
    [(0.45, [0, 2]), (0.55, [0, 2, 3]), (0.7, [0, 1, 2, 3])],
)
def test_greedy_nms_keeps_best_first(threshold: float, kept: list[int]) -> None:
    assert nms(BOXES, SCORES, threshold).tolist() == kept


def test_max_out_caps_the_result() -> None:
    assert nms(BOXES, SCORES, 0.99, max_out=2).tolist() == [0, 1]


def test_nms_of_nothing() -> None:
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


def test_classes_do_not_suppress_each_other() -> None:
    classes = np.array([0, 1, 0, 0], np.int64)
    assert sorted(class_nms(BOXES, SCORES, classes, 0.45).tolist()) == [0, 1, 2]


def test_weighted_nms_blends_the_overlapping_group() -> None:
    boxes, scores = weighted_nms(BOXES[:3], SCORES[:3], 0.3)
    expected = (BOXES[0] * 0.9 + BOXES[1] * 0.8) / 1.7
    np.testing.assert_allclose(boxes, [expected, BOXES[2]], rtol=1e-6)
    np.testing.assert_allclose(scores, [0.9, 0.7])


@pytest.mark.parametrize(
    ("boxes", "scores", "message"),
    [
        (np.zeros((3, 5), np.float32), np.zeros(3, np.float32), "boxes must be K×4"),
        (np.zeros((3, 4), np.float32), np.zeros(2, np.float32), "scores must be"),
    ],
)
def test_bad_shapes_are_refused(
    boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        nms(boxes, scores, 0.5)
