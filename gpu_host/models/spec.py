"""One declarative spec per served model: the single source of truth for its tensors and batching.

The Triton model repository (both targets), the backend's request building and the model's
pre/post-processing all read the same spec, so a name or a shape cannot drift between them.
This module stays import-light (no NumPy, no OpenCV): the repository generator and the CDK
asset build use it without the vision stack.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpu_host.vision.types import Processor

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
"""Where the ONNX files named by `ModelSpec.onnx_file` live."""


class DType(StrEnum):
    """A tensor element type, by its Triton wire name (what `InferInput` takes)."""

    UINT8 = "UINT8"
    INT32 = "INT32"
    INT64 = "INT64"
    FP16 = "FP16"
    FP32 = "FP32"

    @property
    def config_name(self) -> str:
        """The name `config.pbtxt` uses (`TYPE_UINT8`, …)."""
        return f"TYPE_{self.value}"

    @property
    def numpy_name(self) -> str:
        """The NumPy dtype name (`uint8`, `float32`, …)."""
        return _NUMPY_NAMES[self]


_NUMPY_NAMES: dict[DType, str] = {
    DType.UINT8: "uint8",
    DType.INT32: "int32",
    DType.INT64: "int64",
    DType.FP16: "float16",
    DType.FP32: "float32",
}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One named tensor of ONE item: `dims` excludes the batch dimension."""

    name: str
    dtype: DType
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        # Triton rejects these characters in tensor names (they clash with its own syntax).
        if not self.name or any(c in self.name for c in ":/ "):
            raise ValueError(f"tensor name {self.name!r} must be non-empty without ':', '/', ' '")
        if not self.dims or any(d <= 0 for d in self.dims):
            raise ValueError(f"tensor {self.name!r}: dims {self.dims} must be fixed and positive")


@dataclass(frozen=True, slots=True)
class DynamicBatching:
    """Triton's dynamic batcher: merge requests from all sessions into one execution."""

    preferred_batch_sizes: tuple[int, ...]
    max_queue_delay_us: int

    def __post_init__(self) -> None:
        if self.max_queue_delay_us < 0:
            raise ValueError("max_queue_delay_us must be >= 0")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything the repository generator and the backend need to know about one model."""

    name: str
    onnx_file: str
    """Path of the ONNX file, relative to `ZOO_DIR`."""
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int
    batching: DynamicBatching | None
    processor: str
    """`"module:factory"`: a zero-argument callable returning this model's `Processor`.
    A string, so that reading specs never imports OpenCV/NumPy."""

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"{self.name}: max_batch_size must be >= 1 (batching is the point)")
        if self.batching is not None:
            too_big = [b for b in self.batching.preferred_batch_sizes if b > self.max_batch_size]
            if too_big:
                raise ValueError(f"{self.name}: preferred batch sizes {too_big} > max_batch_size")
        names = [t.name for t in (*self.inputs, *self.outputs)]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.name}: tensor names must be unique, got {names}")
        if ":" not in self.processor:
            raise ValueError(f"{self.name}: processor must be 'module:factory'")

    @property
    def onnx_path(self) -> Path:
        return ZOO_DIR / self.onnx_file


def load_processor(spec: ModelSpec) -> Processor:
    """Import and build the spec's processor (the only place specs touch the vision code)."""
    module_name, _, attr = spec.processor.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    processor: Processor = factory()
    if processor.model != spec.name:
        raise ValueError(f"processor {spec.processor} says model {processor.model!r}")
    return processor


TEXT = ModelSpec(
    name="text",
    onnx_file="text_det.onnx",
    # PP-OCRv4 text detector behind a uint8 NHWC prefix (see `image_input`): the wire carries
    # 3 bytes per pixel, not 12, and normalization runs inside the graph on the accelerator.
    inputs=(TensorSpec("image", DType.UINT8, (256, 320, 3)),),
    outputs=(TensorSpec("prob", DType.FP32, (1, 256, 320)),),
    max_batch_size=8,
    batching=DynamicBatching(preferred_batch_sizes=(4, 8), max_queue_delay_us=2000),
    processor="gpu_host.vision.text:TextProcessor",
)

SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (TEXT,)}
"""Every model this code base can serve, by name (the name clients put in `hello`)."""
