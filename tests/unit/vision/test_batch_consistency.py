"""Every committed model that claims a dynamic batch: a batch of 4 == 4 single runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gpu_host.vision.detect import NanoDetProcessor
from gpu_host.vision.face import BlazeFaceProcessor
from gpu_host.vision.ocr import default_processor
from gpu_host.vision.pose import MoveNetProcessor
from gpu_host.vision.segment import SelfieSegmentProcessor
from gpu_host.vision.types import Processor
from tests.unit.vision.harness import Photo, Zoo, single

PROCESSORS: dict[str, Callable[[], Processor]] = {
    "detect": NanoDetProcessor,
    "pose": MoveNetProcessor,
    "face": BlazeFaceProcessor,
    "ocr": default_processor,
    "segment": SelfieSegmentProcessor,
}
PHOTOS = ("astronaut", "coffee", "chelsea", "grace_hopper")


def test_every_zoo_model_is_covered(zoo_dir: Path) -> None:
    manifest = json.loads((zoo_dir / "MANIFEST.json").read_text())
    dynamic = {name for name, m in manifest["models"].items() if m["dynamic_batch"]}
    assert dynamic - {"text_det"} == set(PROCESSORS)  # text_det is tested by its own helper


@pytest.mark.parametrize("model", sorted(PROCESSORS))
def test_batch_of_four_equals_four_singles(model: str, zoo: Zoo, photo: Photo) -> None:
    processor = PROCESSORS[model]()
    inputs = [processor.preprocess(photo(name))[0] for name in PHOTOS]
    names = list(inputs[0])
    batch = {n: np.stack([i[n] for i in inputs]) for n in names}
    together = zoo.infer(model, batch)
    for single_input, batched in zip(inputs, together, strict=True):
        (alone,) = zoo.infer(model, single(single_input))
        for name, value in alone.items():
            np.testing.assert_allclose(batched[name], value, rtol=1e-4, atol=1e-4)
