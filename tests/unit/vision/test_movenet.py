"""MoveNet (`pose`) on real photographs: keypoints on the person, the nose on the face."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_host.vision.pose import KEYPOINT_NAMES, MoveNetProcessor
from tests.unit.vision.harness import Photo, Run
from tests.unit.vision.photos import FACES, NO_PEOPLE, OBJECTS, inside

NOSE = KEYPOINT_NAMES.index("nose")


@pytest.mark.parametrize("name", sorted(FACES))
def test_keypoints_sit_on_the_person(name: str, photo: Photo, run: Run) -> None:
    """Given a portrait, when posed, then the confident keypoints lie inside the person's
    box and the nose inside the face's box."""
    image = photo(name)
    height, width = image.shape[:2]
    (pose,) = run(MoveNetProcessor(), image).keypoints
    assert len(pose.points) == 17
    pixels = [(x * width, y * height, score) for x, y, score in pose.points]
    _, person = OBJECTS[name]
    confident = [(x, y) for x, y, score in pixels if score > 0.3]
    assert len(confident) >= 5
    assert all(inside(p, person, margin=10) for p in confident)
    nose_x, nose_y, nose_score = pixels[NOSE]
    assert nose_score > 0.3
    assert inside((nose_x, nose_y), FACES[name])


@pytest.mark.parametrize("name", NO_PEOPLE)
def test_no_person_no_pose(name: str, photo: Photo, run: Run) -> None:
    assert run(MoveNetProcessor(), photo(name)).keypoints == ()


def test_bad_output_shape_is_named() -> None:
    processor = MoveNetProcessor()
    _, letterbox = processor.preprocess(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="'keypoints' has shape"):
        processor.postprocess({"keypoints": np.zeros((1, 16, 3))}, letterbox)
