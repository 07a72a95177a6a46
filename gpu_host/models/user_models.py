"""Your own YOLOv8 models, declared in a JSON file instead of code.

A user who exported a model with Ultralytics (`yolo export model=best.pt format=onnx
dynamic=True`) puts the `.onnx` file next to a `user_models.json` that describes it:

    {"models": [{"name": "shapes", "file": "best.onnx", "layout": "yolov8-detect",
                 "input_size": 640, "labels": ["circle", "square"], "max_batch_size": 8}]}

Each entry becomes a `ModelSpec` served by Triton (both targets) and decoded by
`gpu_host.vision.yolov8.Yolov8Processor`; see docs/models.md for the whole procedure. This
module only reads and checks the file: it stays import-light, like `spec`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gpu_host.vision.coco import COCO_LABELS

YOLOV8_STRIDES = (8, 16, 32)
"""The three detection grids of every YOLOv8 head; one anchor per cell of each."""

Layout = Literal["yolov8-detect", "yolov8-pose"]


class UserModelError(ValueError):
    """`user_models.json` is unreadable or declares something that cannot be served."""


class UserModel(BaseModel):
    """One entry of `user_models.json`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
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
    uint8_input: bool = False
    """The graph takes uint8 [S, S, 3] RGB (normalization baked in), not float32 [3, S, S]."""

    @model_validator(mode="after")
    def _labels_fit_the_layout(self) -> UserModel:
        if self.labels is not None and not self.labels:
            raise ValueError("labels must not be empty (leave them out for the default)")
        if self.layout == "yolov8-pose" and self.labels is not None and len(self.labels) != 1:
            raise ValueError("a pose model has exactly one class (its label)")
        return self

    @property
    def task(self) -> Literal["detect", "pose"]:
        return "detect" if self.layout == "yolov8-detect" else "pose"

    @property
    def anchors(self) -> int:
        return sum((self.input_size // stride) ** 2 for stride in YOLOV8_STRIDES)

    @property
    def channels(self) -> int:
        """Rows of `output0`: box (4) + class scores, or box + person score + K × (x, y, v)."""
        if self.task == "detect":
            return 4 + len(self.labels or COCO_LABELS)
        return 4 + 1 + 3 * self.num_keypoints

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
        }
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
