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
