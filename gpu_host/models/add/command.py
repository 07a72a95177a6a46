"""`add`: check the file, settle its batching, then write it and its declaration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gpu_host.models.add.batch import batching
from gpu_host.models.add.errors import AddError
from gpu_host.models.add.graph import COCO_CLASSES, ExportLayout, check_graph
from gpu_host.models.add.install import install, read_declarations
from gpu_host.models.add.labels import read_labels
from gpu_host.models.add.source import convert_tflite, is_tflite, load_onnx
from gpu_host.models.spec import BUILTIN_SPECS
from gpu_host.models.user_models import NAME_PATTERN, Task, UserModel


@dataclass(frozen=True, slots=True)
class AddRequest:
    file: Path
    task: Task
    name: str
    declarations: Path
    """The `user_models.json` to add to (the model file goes next to it)."""
    labels: Path | None = None
    size: int | None = None
    """The export's imgsz, when the graph leaves its input size free."""
    tf_venv: Path = Path("/tmp/spinup-tf-venv")


@dataclass(frozen=True, slots=True)
class Added:
    entry: UserModel
    model_file: Path
    layout: ExportLayout
    batching: str
    """What was decided about the batch dimension, and why."""
    from_tflite: bool


def add_model(request: AddRequest) -> Added:
    """Add the model, or raise `AddError` having written nothing."""
    declared = read_declarations(request.declarations)
    _check_name(request.name, {str(m.get("name")) for m in declared.get("models", [])})
    if not request.file.is_file():
        raise AddError(f"{request.file} is not a file")
    from_tflite = is_tflite(request.file)
    model = (
        convert_tflite(request.file, request.tf_venv) if from_tflite else (load_onnx(request.file))
    )
    graph, layout = check_graph(model, request.task, request.size)
    labels = _labels(layout, request.labels)
    batch = batching(graph, layout)
    entry = UserModel(
        name=request.name,
        file=f"{request.name}.onnx",
        layout=f"yolov8-{request.task}",
        input_size=layout.size,
        labels=labels,
        num_keypoints=layout.num_keypoints,
        max_batch_size=batch.max_batch_size,
        input_name=layout.input_name,
        output_name=layout.output_name,
        protos_name=layout.protos_name or "output1",
        num_masks=layout.num_masks,
        uint8_input=layout.uint8_input,
        normalized_coordinates=from_tflite,
    )
    target = install(batch.model, entry, request.declarations, declared)
    return Added(entry, target, layout, batch.why, from_tflite)


def _check_name(name: str, declared: set[str]) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise AddError(
            f"name {name!r}: use 1-64 lower-case letters, digits, '_' or '-', starting with a "
            "letter or digit (clients put it in their hello)"
        )
    if name in BUILTIN_SPECS:
        raise AddError(f"name {name!r} is a built-in model's; pick another")
    if name in declared:
        raise AddError(f"name {name!r} is declared already; pick another or remove that entry")


def _labels(layout: ExportLayout, path: Path | None) -> tuple[str, ...] | None:
    """The labels to declare (None: the layout's default), checked against the graph."""
    labels = read_labels(path) if path is not None else None
    if layout.task == "pose":
        if labels is not None and len(labels) != 1:
            raise AddError(
                f"labels count mismatch: a pose model has one class, {path} names {len(labels)}"
            )
        return labels
    if labels is None:
        if layout.classes != COCO_CLASSES:
            raise AddError(
                f"the graph has {layout.classes} classes: name them with --labels (a text file, "
                "one name a line, or a JSON list); only 80 classes default to COCO's"
            )
        return None
    if len(labels) != layout.classes:
        raise AddError(
            f"labels count mismatch: {path} names {len(labels)} classes, the graph's "
            f"{layout.output_name} has {layout.classes}"
        )
    return labels
