"""The verification's sample images and the model inputs made from them.

Each model's own processor prepares the inputs (letterbox, line crop), exactly as the backend
does; every model sees every sample. Two requests per model: one image (batch 1) and a full
batch (`max_batch_size` items, the samples repeated), the two ends of the TensorRT profile.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from gpu_host.models.spec import ModelSpec, load_processor
from gpu_host.vision.types import Image

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
"""astronaut.jpg (NASA, public domain), coffee.jpg (Rachel Michetti, CC0) — both as shipped
in scikit-image — and page.png / line.png, text rendered in DejaVu Sans (make_samples.py)."""

Batch = dict[str, npt.NDArray[Any]]
"""Named input tensors with the batch dimension first."""


def load_samples(folder: Path = SAMPLES_DIR) -> dict[str, Image]:
    """Every sample image, by file stem, as H×W×3 RGB uint8 (sorted: a stable order)."""
    files = sorted(p for p in folder.iterdir() if p.suffix in {".jpg", ".png"})
    if not files:
        raise FileNotFoundError(f"no sample images in {folder}")
    return {
        p.stem: np.ascontiguousarray(np.asarray(PILImage.open(p).convert("RGB"), np.uint8))
        for p in files
    }


def model_batches(spec: ModelSpec, images: list[Image]) -> list[Batch]:
    """A batch of one and a full batch of `spec`'s inputs made from `images`."""
    processor = load_processor(spec)
    items = [processor.preprocess(image)[0] for image in images]
    full = list(itertools.islice(itertools.cycle(items), spec.max_batch_size))
    sizes = dict.fromkeys((1, spec.max_batch_size))
    return [
        {t.name: np.stack([item[t.name] for item in full[:size]]) for t in spec.inputs}
        for size in sizes
    ]
