"""The zoo models on real photographs, through the backend's WebSocket and the real
tritonserver: the right COCO object where a person saw it, the pose on the person, the face
on the face. Each photo travels once, as a camera JPEG, to a session running all three."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gpu_host.vision.pose import KEYPOINT_NAMES
from gpu_host.vision.types import Image
from tests.integration.gpu_host.dataplane_support import RunningBackend, TokenIssuer
from tests.integration.models.models_support import camera_jpeg, infer_once, pixel_box
from tests.unit.vision.photos import FACES, FILES, NO_PEOPLE, OBJECTS, inside, iou, load

pytestmark = pytest.mark.triton

MIN_IOU = 0.5
NOSE = KEYPOINT_NAMES.index("nose")

Results = dict[str, tuple[Image, dict[str, Any]]]


@pytest.fixture(scope="module")
def results(backend: RunningBackend, token_issuer: TokenIssuer) -> Results:
    """Every photo's result from a detect + pose + face session."""

    async def infer_all() -> Results:
        images = {name: load(name) for name in FILES}
        replies = await asyncio.gather(
            *(
                infer_once(backend, token_issuer, camera_jpeg(image), ["detect", "pose", "face"])
                for image in images.values()
            )
        )
        return {name: (images[name], reply) for name, reply in zip(images, replies, strict=True)}

    return asyncio.run(infer_all())


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_detect_finds_the_main_object(name: str, results: Results) -> None:
    """Given a photo with a known main object, a `detect` box with its COCO label overlaps
    the hand-drawn reference by IoU >= 0.5."""
    image, result = results[name]
    label, reference = OBJECTS[name]
    found = [d for d in result["detections"] if d["model"] == "detect"]
    overlaps = [iou(pixel_box(d["box"], image), reference) for d in found if d["label"] == label]
    assert overlaps, f"no {label} in {[(d['label'], d['score']) for d in found]}"
    assert max(overlaps) >= MIN_IOU


@pytest.mark.parametrize("name", sorted(FACES))
def test_pose_sits_on_the_person_with_the_nose_on_the_face(name: str, results: Results) -> None:
    image, result = results[name]
    (pose,) = result["keypoints"]
    assert pose["model"] == "pose"
    assert len(pose["points"]) == 17
    height, width = image.shape[:2]
    pixels = [(x * width, y * height, score) for x, y, score in pose["points"]]
    _, person = OBJECTS[name]
    confident = [(x, y) for x, y, score in pixels if score > 0.3]
    assert len(confident) >= 5
    assert all(inside(p, person, margin=10) for p in confident)
    nose_x, nose_y, nose_score = pixels[NOSE]
    assert nose_score > 0.3
    assert inside((nose_x, nose_y), FACES[name])


@pytest.mark.parametrize("name", sorted(FACES))
def test_face_box_on_each_face(name: str, results: Results) -> None:
    image, result = results[name]
    faces = [d for d in result["detections"] if d["model"] == "face"]
    assert [d["label"] for d in faces][:1] == ["face"]
    assert iou(pixel_box(faces[0]["box"], image), FACES[name]) >= MIN_IOU


@pytest.mark.parametrize("name", NO_PEOPLE)
def test_no_person_no_pose(name: str, results: Results) -> None:
    assert results[name][1]["keypoints"] == []


@pytest.mark.parametrize("name", ["coffee", "motorcycle_left"])
def test_no_face_where_there_is_none(name: str, results: Results) -> None:
    assert [d for d in results[name][1]["detections"] if d["model"] == "face"] == []


@pytest.mark.parametrize("name", sorted(FILES))
def test_coordinates_are_normalized(name: str, results: Results) -> None:
    _, result = results[name]
    for d in result["detections"]:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= 1
        assert 0 <= y1 < y2 <= 1
    for pose in result["keypoints"]:
        assert all(0 <= x <= 1 and 0 <= y <= 1 and 0 <= s <= 1 for x, y, s in pose["points"])
