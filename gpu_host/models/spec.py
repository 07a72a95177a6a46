"""One declarative spec per served model: the single source of truth for its tensors and batching.

The Triton model repository (both targets), the backend's request building and the model's
pre/post-processing all read the same spec, so a name or a shape cannot drift between them.
This module stays import-light (no NumPy, no OpenCV): the repository generator and the CDK
asset build use it without the vision stack.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu_host.models.user_models import UserModel, UserModelError, read_user_models

if TYPE_CHECKING:
    from gpu_host.vision.types import Processor

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
"""Where the ONNX files named by `ModelSpec.onnx_file` live."""

USER_MODELS_FILE = Path(__file__).resolve().parent / "user" / "user_models.json"
"""Where a user declares their own models (see `user_models`); absent = none."""


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

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return _ITEMSIZES[self]


_ITEMSIZES: dict[DType, int] = {
    DType.UINT8: 1,
    DType.INT32: 4,
    DType.INT64: 8,
    DType.FP16: 2,
    DType.FP32: 4,
}

_NUMPY_NAMES: dict[DType, str] = {
    DType.UINT8: "uint8",
    DType.INT32: "int32",
    DType.INT64: "int64",
    DType.FP16: "float16",
    DType.FP32: "float32",
}


class Precision(StrEnum):
    """The precision TensorRT builds a model's engine in on the GPU (Triton's `precision_mode`).

    FP16 sets TensorRT's FP16 builder flag: TensorRT then picks, layer by layer, whichever of
    its FP16 or FP32 kernels is faster — FP16 weights and activations wherever it is faster,
    with no accuracy rule deciding which layers stay FP32 (unlike PyTorch's autocast). FP32
    keeps every layer in FP32 (TensorRT may still use TF32 tensor cores on Ampere and newer).
    """

    FP16 = "FP16"
    FP32 = "FP32"


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

    @property
    def nbytes(self) -> int:
        """Bytes of one item's tensor."""
        return math.prod(self.dims) * self.dtype.itemsize


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
    """Path of the ONNX file, relative to `ZOO_DIR` (or absolute: a user's own model)."""
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int
    batching: DynamicBatching | None
    processor: str
    """`"module:factory"`: a callable returning this model's `Processor`. A string, so that
    reading specs never imports OpenCV/NumPy."""
    processor_args: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Keyword arguments for the factory (a user model's classes, input size, …)."""
    regions_from: str | None = None
    """Run once per region that model found (OCR reads `text`'s boxes), not on the frame."""
    gpu_precision: Precision = Precision.FP32
    """TensorRT's precision on the GPU host, before verification (`gpu_host.models.verify`)
    may move a model that is off in FP16 to FP32. FP32 unless the model was measured to hold
    in FP16 (docs/models.md, "Precision on the GPU")."""

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
        if self.regions_from == self.name:
            raise ValueError(f"{self.name}: regions_from cannot name the model itself")

    @property
    def onnx_path(self) -> Path:
        return ZOO_DIR / self.onnx_file  # an absolute onnx_file stays as it is


def load_processor(spec: ModelSpec) -> Processor:
    """Import and build the spec's processor (the only place specs touch the vision code)."""
    module_name, _, attr = spec.processor.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    processor: Processor = factory(**spec.processor_args)
    if processor.model != spec.name:
        raise ValueError(f"processor {spec.processor} says model {processor.model!r}")
    return processor


def _batching(max_batch_size: int) -> DynamicBatching:
    # Half and full batches; waiting 2 ms for company costs little next to a frame interval
    # and lets Triton merge frames from different sessions.
    return DynamicBatching(
        preferred_batch_sizes=(max_batch_size // 2, max_batch_size), max_queue_delay_us=2000
    )


# Every zoo model takes the letterboxed frame as uint8 RGB NHWC and normalizes inside the
# graph (see `gpu_host.models.convert`): the wire carries 3 bytes per pixel, not 12.

DETECT_TOP_K = 1000
"""Candidates the detect graph returns per frame (its box head's top-k), the default of
`gpu_host.vision.detect.DetectParams.max_candidates`."""

DETECT = ModelSpec(
    name="detect",
    onnx_file="detect.onnx",
    inputs=(TensorSpec("image", DType.UINT8, (416, 416, 3)),),
    # The best (cell, class) pairs of NanoDet-m's three grids, decoded in the graph:
    # x1, y1, x2, y2, score, class (gpu_host.models.convert.box_head).
    outputs=(TensorSpec("detections", DType.FP32, (DETECT_TOP_K, 6)),),
    max_batch_size=8,
    batching=_batching(8),
    processor="gpu_host.vision.detect:NanoDetProcessor",
    # FP16 holds: max |Δ| 0.025 on logits up to 11.5, the same detections (docs/models.md).
    gpu_precision=Precision.FP16,
)

POSE = ModelSpec(
    name="pose",
    onnx_file="pose.onnx",
    inputs=(TensorSpec("image", DType.UINT8, (192, 192, 3)),),
    outputs=(TensorSpec("keypoints", DType.FP32, (1, 17, 3)),),
    max_batch_size=8,
    batching=_batching(8),
    processor="gpu_host.vision.pose:MoveNetProcessor",
    # FP32: MoveNet holds in FP16 only under autocast (|Δ| 0.006); with half weights it is
    # off by 0.10 on keypoints in 0..1, and TensorRT's FP16 mode has no autocast-like rule
    # keeping the sensitive layers in FP32 (see `Precision`).
    gpu_precision=Precision.FP32,
)

FACE = ModelSpec(
    name="face",
    onnx_file="face.onnx",
    inputs=(TensorSpec("image", DType.UINT8, (128, 128, 3)),),
    outputs=(
        TensorSpec("boxes", DType.FP32, (896, 16)),
        TensorSpec("scores", DType.FP32, (896, 1)),
    ),
    max_batch_size=8,
    batching=_batching(8),
    processor="gpu_host.vision.face:BlazeFaceProcessor",
    # FP16 holds: max |Δ| 1.5 on raw scores up to 416, the same faces (docs/models.md).
    gpu_precision=Precision.FP16,
)

TEXT = ModelSpec(
    name="text",
    onnx_file="text_det.onnx",
    inputs=(TensorSpec("image", DType.UINT8, (256, 320, 3)),),
    outputs=(TensorSpec("prob", DType.FP32, (1, 256, 320)),),
    max_batch_size=8,
    batching=_batching(8),
    processor="gpu_host.vision.text:TextProcessor",
    # FP32: the DB probability map is off by up to 1.0 in FP16 (0.27 even under autocast),
    # which loses or merges text regions.
    gpu_precision=Precision.FP32,
)

OCR = ModelSpec(
    name="ocr",
    onnx_file="ocr.onnx",
    # One text line per item, height 48, right-padded to a fixed width so that lines from
    # any frame batch together; the recognizer emits one step per 8 columns (320 / 8 = 40).
    inputs=(TensorSpec("image", DType.UINT8, (48, 320, 3)),),
    outputs=(TensorSpec("probs", DType.FP32, (40, 6625)),),
    max_batch_size=16,
    batching=_batching(16),
    processor="gpu_host.vision.ocr:default_processor",
    regions_from="text",
    # FP16 holds: max |Δ| 0.007 on the per-step softmax (docs/models.md).
    gpu_precision=Precision.FP16,
)

SEGMENT = ModelSpec(
    name="segment",
    onnx_file="segment.onnx",
    inputs=(TensorSpec("image", DType.UINT8, (256, 256, 3)),),
    # Person probability per input pixel (MediaPipe Selfie Segmentation, general model).
    outputs=(TensorSpec("mask", DType.FP32, (256, 256, 1)),),
    max_batch_size=8,
    batching=_batching(8),
    processor="gpu_host.vision.segment:SelfieSegmentProcessor",
    # FP32: not yet measured in FP16 on a GPU.
    gpu_precision=Precision.FP32,
)

BUILTIN_SPECS: dict[str, ModelSpec] = {s.name: s for s in (DETECT, POSE, FACE, TEXT, OCR, SEGMENT)}
"""The models that ship in the zoo."""


def user_spec(model: UserModel, folder: Path) -> ModelSpec:
    """The spec of a user's YOLOv8 export (decoded by `gpu_host.vision.yolov8`); a segment
    export has a second output, its prototype masks."""
    size = model.input_size
    image = (
        TensorSpec(model.input_name, DType.UINT8, (size, size, 3))
        if model.uint8_input
        else TensorSpec(model.input_name, DType.FP32, (3, size, size))
    )
    outputs = [TensorSpec(model.output_name, DType.FP32, (model.channels, model.anchors))]
    if model.task == "segment":
        side = model.protos_side
        outputs.append(TensorSpec(model.protos_name, DType.FP32, (model.num_masks, side, side)))
    return ModelSpec(
        name=model.name,
        onnx_file=str((folder / model.file).resolve()),
        inputs=(image,),
        outputs=tuple(outputs),
        max_batch_size=model.max_batch_size,
        batching=None if model.max_batch_size == 1 else DynamicBatching((), 2000),
        processor="gpu_host.vision.yolov8:Yolov8Processor",
        processor_args=model.processor_args(),
    )


def model_catalog(user_models: Path | None) -> dict[str, ModelSpec]:
    """Every model this code base can serve, by name (the name clients put in `hello`): the
    built-in ones plus those `user_models` declares (None, or a missing file, declares none).

    Read when needed, never at import: what a user drops into `USER_MODELS_FILE` must not
    change what merely importing this module (or collecting a test) does.
    """
    if user_models is None:
        return dict(BUILTIN_SPECS)
    declared = read_user_models(user_models)
    clash = sorted(m.name for m in declared if m.name in BUILTIN_SPECS)
    if clash:
        raise UserModelError(f"{user_models}: {clash} already name built-in models")
    return {**BUILTIN_SPECS, **{m.name: user_spec(m, user_models.parent) for m in declared}}
