"""BlazeFace (`face`) on real photographs, and its anchors."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_host.vision.face import BlazeFaceProcessor, ssd_anchors
from tests.unit.vision.harness import Photo, Run
from tests.unit.vision.photos import FACES, iou, to_pixels

MIN_IOU = 0.5


@pytest.mark.parametrize("name", sorted(FACES))
def test_finds_each_face(name: str, photo: Photo, run: Run) -> None:
    """Given a portrait, when detected, then one face box overlaps the reference by IoU >= 0.5."""
    image = photo(name)
    faces = run(BlazeFaceProcessor(), image).detections
    assert [d.label for d in faces][:1] == ["face"]
    assert iou(to_pixels(faces[0].box, image), FACES[name]) >= MIN_IOU


@pytest.mark.parametrize("name", ["coffee", "motorcycle_left"])
def test_no_face_where_there_is_none(name: str, photo: Photo, run: Run) -> None:
    assert run(BlazeFaceProcessor(), photo(name)).detections == ()


def test_anchors_follow_mediapipe_layout() -> None:
    """896 anchors: 16×16 cells × 2 (stride 8), then 8×8 cells × 6 (three stride-16 layers)."""
    anchors = ssd_anchors()
    assert anchors.shape == (896, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1], anchors[0])  # two anchors share a cell
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[512], [0.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_decodes_a_known_regression() -> None:
    """A single confident anchor at the input's centre with size 64 px maps to the frame's
    centre quarter (the frame is square, so the letterbox is a pure scale)."""
    processor = BlazeFaceProcessor()
    _, letterbox = processor.preprocess(np.zeros((256, 256, 3), np.uint8))
    anchors = processor.anchors
    index = int(np.argmin(np.abs(anchors - 0.5).sum(axis=1)))  # nearest to the centre
    boxes = np.zeros((896, 16), np.float32)
    boxes[index, :2] = (0.5 - anchors[index]) * 128  # offset from the anchor to the centre
    boxes[index, 2:4] = 64
    scores = np.full((896, 1), -10, np.float32)
    scores[index] = 10
    (face,) = processor.postprocess({"boxes": boxes, "scores": scores}, letterbox).detections
    np.testing.assert_allclose(face.box, (0.25, 0.25, 0.75, 0.75), atol=1e-6)
    assert face.score == pytest.approx(1 / (1 + np.exp(-10)), rel=1e-6)


@pytest.mark.parametrize("logit", [-1e-3, -1e-7, -1e-9, 0.0, 1e-9, 1e-3])
def test_an_anchor_at_the_threshold_passes_as_its_rounded_score_says(logit: float) -> None:
    """Scores are float32: a logit a hair below the threshold's may still round up to it.
    Only anchors near the threshold's logit get a sigmoid, and that shortcut keeps exactly
    the anchors whose float32 score passes, as scoring all 896 would."""
    processor = BlazeFaceProcessor()
    _, letterbox = processor.preprocess(np.zeros((128, 128, 3), np.uint8))
    boxes = np.zeros((896, 16), np.float32)
    boxes[:, 2:4] = 16
    scores = np.full((896, 1), -10, np.float32)
    scores[300] = logit
    score = np.float32(1 / (1 + np.exp(-np.float64(np.float32(logit)))))
    found = processor.postprocess({"boxes": boxes, "scores": scores}, letterbox).detections
    assert len(found) == int(score >= 0.5)
