"""The stock `segment` model on real photographs, through the real tritonserver (CPU): the
person mask overlaps the reference mask drawn for each photo (tests/unit/vision/masks).

The photos go to Triton as ONE batched request, as the dynamic batcher would merge frames
from several sessions; each item is post-processed exactly as the backend does."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from gpu_host.models.spec import SEGMENT
from gpu_host.triton.local import LocalTriton
from gpu_host.vision.segment import SelfieSegmentProcessor
from gpu_host.vision.types import Image, Mask
from tests.unit.vision.photos import load
from tests.unit.vision.reference_masks import MIN_IOU, load_reference, mask_iou, on_frame

pytestmark = pytest.mark.triton

PEOPLE = sorted(MIN_IOU)


@pytest.fixture(scope="module")
def masks(triton: LocalTriton) -> dict[str, tuple[Image, tuple[Mask, ...]]]:
    processor = SelfieSegmentProcessor()
    images = {name: load(name) for name in PEOPLE}
    prepared = [processor.preprocess(image) for image in images.values()]
    batch = np.stack([tensors["image"] for tensors, _ in prepared])
    (image_spec,), (mask_spec,) = SEGMENT.inputs, SEGMENT.outputs
    request = grpcclient.InferInput(image_spec.name, list(batch.shape), image_spec.dtype.value)
    request.set_data_from_numpy(batch)
    client = grpcclient.InferenceServerClient(triton.grpc_url)
    try:
        served = client.infer(SEGMENT.name, [request]).as_numpy(mask_spec.name)
    finally:
        client.close()
    assert served is not None
    assert served.shape == (len(images), *mask_spec.dims)
    return {
        name: (image, processor.postprocess({mask_spec.name: item}, box).masks)
        for (name, image), item, (_, box) in zip(images.items(), served, prepared, strict=True)
    }


@pytest.mark.parametrize("name", PEOPLE)
def test_person_mask_matches_the_reference(
    name: str, masks: dict[str, tuple[Image, tuple[Mask, ...]]]
) -> None:
    image, found = masks[name]
    (mask,) = found
    assert (mask.model, mask.label, mask.box) == ("segment", "person", (0.0, 0.0, 1.0, 1.0))
    assert mask_iou(on_frame(mask, image), load_reference(name)) >= MIN_IOU[name]
