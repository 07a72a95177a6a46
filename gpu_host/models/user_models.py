"""Your own YOLOv8 models, declared in a JSON file instead of code.

`python -m gpu_host.models add` checks a user's Ultralytics export and writes both the file
and its entry; by hand, the `.onnx` file goes next to a `user_models.json` that describes it:

    {"models": [{"name": "shapes", "file": "best.onnx", "layout": "yolov8-detect",
                 "input_size": 640, "labels": ["circle", "square"], "max_batch_size": 8}]}

Each entry becomes a `ModelSpec` served by Triton (both targets) and decoded by
`gpu_host.vision.yolov8.Yolov8Processor`; see docs/models.md for the whole procedure. This
module only reads and checks the file: it stays import-light, like `spec`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gpu_host.vision.coco import COCO_LABELS

YOLOV8_STRIDES = (8, 16, 32)
"""The three detection grids of every YOLOv8 head; one anchor per cell of each."""

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""A model name: what clients put in `hello` and Triton's repository uses as a folder."""

Layout = Literal["yolov8-detect", "yolov8-segment", "yolov8-pose"]
Task = Literal["detect", "segment", "pose"]

PROTO_STRIDE = 4
"""A YOLOv8 segment export's prototype masks are a quarter of the input on each side."""

TASK_HINTS: dict[str, str] = {
    "detect": "Your detection model",
    "segment": "Your segment model",
    "pose": "Your pose model",
}
"""What the UI says under a user model's name (config.json's `models`)."""


_TASKS: dict[Layout, Task] = {
    "yolov8-detect": "detect",
    "yolov8-segment": "segment",
    "yolov8-pose": "pose",
}


class UserModelError(ValueError):
    """`user_models.json` is unreadable or declares something that cannot be served."""


class UserModel(BaseModel):
    """One entry of `user_models.json`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    """What clients put in `hello` and Triton calls the model."""
    file: str = Field(min_length=1)
    """The ONNX file, relative to the JSON file's folder."""
    layout: Layout
    input_size: int = Field(gt=0, multiple_of=32)
    """The export's `imgsz` (square)."""
    labels: tuple[str, ...] | None = None
    """Class names in training order; default the 80 COCO classes (detect) or `person`."""
    num_keypoints: int = Field(default=17, gt=0)
    """Keypoints per person (pose layout only)."""
    max_batch_size: int = Field(default=8, ge=1, le=64)
    """Above 1 Triton batches requests, which needs an export with `dynamic=True`."""
    input_name: str = "images"
    output_name: str = "output0"
    protos_name: str = "output1"
    """The segment layout's second output: prototype masks [num_masks, S/4, S/4]."""
    num_masks: int = Field(default=32, gt=0)
    """Mask coefficients per anchor = prototype masks (segment layout only)."""
    uint8_input: bool = False
    """The graph takes uint8 [S, S, 3] RGB (normalization baked in), not float32 [3, S, S]."""
    normalized_coordinates: bool = False
    """Boxes and keypoints come out in 0..1 of the input instead of input pixels, as
    Ultralytics' TFLite exports give them."""

    @model_validator(mode="after")
    def _labels_fit_the_layout(self) -> UserModel:
        if self.labels is not None and not self.labels:
            raise ValueError("labels must not be empty (leave them out for the default)")
        if self.layout == "yolov8-pose" and self.labels is not None and len(self.labels) != 1:
            raise ValueError("a pose model has exactly one class (its label)")
        if self.layout == "yolov8-segment" and self.protos_name == self.output_name:
            raise ValueError("protos_name and output_name must differ")
        return self

    def offered(self) -> dict[str, str]:
        """This model as config.json's `models` lists it for the UI."""
        return {"id": self.name, "label": self.name, "hint": TASK_HINTS[self.task]}

    @property
    def task(self) -> Task:
        return _TASKS[self.layout]

    @property
    def anchors(self) -> int:
        return sum((self.input_size // stride) ** 2 for stride in YOLOV8_STRIDES)

    @property
    def channels(self) -> int:
        """Rows of `output0`: box (4) + class scores (+ mask coefficients when segmenting),
        or box + person score + K × (x, y, v)."""
        if self.task == "detect":
            return 4 + len(self.labels or COCO_LABELS)
        if self.task == "segment":
            return 4 + len(self.labels or COCO_LABELS) + self.num_masks
        return 4 + 1 + 3 * self.num_keypoints

    @property
    def protos_side(self) -> int:
        return self.input_size // PROTO_STRIDE

    def processor_args(self) -> dict[str, Any]:
        """Keyword arguments of `Yolov8Processor` for this model."""
        args: dict[str, Any] = {
            "model": self.name,
            "task": self.task,
            "num_keypoints": self.num_keypoints,
            "size": self.input_size,
            "input_name": self.input_name,
            "output_name": self.output_name,
            "uint8_input": self.uint8_input,
            "normalized_coordinates": self.normalized_coordinates,
        }
        if self.task == "segment":
            args["protos_name"] = self.protos_name
            args["num_masks"] = self.num_masks
        if self.labels is not None:
            args["labels"] = self.labels
        return args


class UserModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[UserModel, ...] = ()


def read_user_models(path: Path) -> tuple[UserModel, ...]:
    """The models `path` declares; none when the file does not exist (nobody added any).

    Every problem — bad JSON, a missing field, a model file that is not there, a name used
    twice — is a `UserModelError` that names the file.
    """
    if not path.is_file():
        return ()
    try:
        declared = UserModelsFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
        raise UserModelError(f"{path}: {exc}") from exc
    names = [m.name for m in declared.models]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserModelError(f"{path}: models declared twice: {twice}")
    for model in declared.models:
        if not (path.parent / model.file).is_file():
            raise UserModelError(f"{path}: model {model.name!r}: {model.file} is not there")
    return declared.models


def offered_models(
    models: Iterable[UserModel], served: Collection[str] | None = None
) -> list[dict[str, str]]:
    """config.json's `models`: the user models the UI offers after the built-in ones, those
    of `models` that are `served` (None: all), in declaration order."""
    return [m.offered() for m in models if served is None or m.name in served]
