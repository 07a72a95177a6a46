"""`user_models.json`: a user's own YOLOv8 exports become model specs by configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpu_host.models.repository import Target, model_config, write_repository
from gpu_host.models.spec import BUILTIN_SPECS, DType, load_processor, model_catalog
from gpu_host.models.user_models import UserModelError, offered_models, read_user_models
from gpu_host.vision.coco import COCO_LABELS
from gpu_host.vision.yolov8 import Yolov8Processor


def declare(folder: Path, *models: dict[str, Any], files: bool = True) -> Path:
    """Write `user_models.json` (and a stand-in file for each model) into `folder`."""
    for model in models:
        if files and "file" in model:
            (folder / model["file"]).write_bytes(b"onnx")
    path = folder / "user_models.json"
    path.write_text(json.dumps({"models": list(models)}))
    return path


SHAPES = {
    "name": "shapes",
    "file": "shapes.onnx",
    "layout": "yolov8-detect",
    "input_size": 320,
    "labels": ["circle", "square"],
}
PEOPLE = {"name": "people", "file": "pose.onnx", "layout": "yolov8-pose", "input_size": 640}
NAILS = {
    "name": "nails",
    "file": "nails.onnx",
    "layout": "yolov8-segment",
    "input_size": 320,
    "labels": ["nail"],
    "max_batch_size": 1,
}


def test_a_missing_file_declares_nothing(tmp_path: Path) -> None:
    assert read_user_models(tmp_path / "user_models.json") == ()
    assert model_catalog(tmp_path / "user_models.json") == BUILTIN_SPECS


def test_a_detect_export_becomes_a_spec(tmp_path: Path) -> None:
    """Given a 320 px export with two classes, the spec has Ultralytics' tensors: float32
    `images` [3, 320, 320] in, `output0` [4 + 2, 2100 anchors] out (40² + 20² + 10²)."""
    catalog = model_catalog(declare(tmp_path, SHAPES))
    spec = catalog["shapes"]
    assert [(t.name, t.dtype, t.dims) for t in spec.inputs] == [
        ("images", DType.FP32, (3, 320, 320))
    ]
    assert [(t.name, t.dtype, t.dims) for t in spec.outputs] == [("output0", DType.FP32, (6, 2100))]
    assert spec.onnx_path == (tmp_path / "shapes.onnx").resolve()
    assert spec.max_batch_size == 8
    assert spec.batching is not None
    processor = load_processor(spec)
    assert isinstance(processor, Yolov8Processor)
    assert (processor.model, processor.task, processor.labels) == (
        "shapes",
        "detect",
        ("circle", "square"),
    )
    assert processor.channels == 6


def test_a_pose_export_becomes_a_spec(tmp_path: Path) -> None:
    spec = model_catalog(declare(tmp_path, PEOPLE))["people"]
    assert spec.outputs[0].dims == (4 + 1 + 17 * 3, 8400)
    processor = load_processor(spec)
    assert isinstance(processor, Yolov8Processor)
    assert (processor.task, processor.labels, processor.size) == ("pose", ("person",), 640)


def test_a_segment_export_has_a_second_output_its_prototypes(tmp_path: Path) -> None:
    """Given a 320 px export with one class: `output0` [4 + 1 + 32, 2100] and `output1`, the
    32 prototype masks at a quarter of the input [32, 80, 80]."""
    spec = model_catalog(declare(tmp_path, NAILS))["nails"]
    assert [(t.name, t.dtype, t.dims) for t in spec.outputs] == [
        ("output0", DType.FP32, (4 + 1 + 32, 2100)),
        ("output1", DType.FP32, (32, 80, 80)),
    ]
    processor = load_processor(spec)
    assert isinstance(processor, Yolov8Processor)
    assert (processor.task, processor.labels, processor.protos_name) == (
        "segment",
        ("nail",),
        "output1",
    )
    config = model_config(spec, Target.LOCAL)
    assert [(o.name, list(o.dims)) for o in config.output] == [
        ("output0", [37, 2100]),
        ("output1", [32, 80, 80]),
    ]


def test_the_ui_is_offered_the_served_user_models(tmp_path: Path) -> None:
    models = read_user_models(declare(tmp_path, SHAPES, NAILS, PEOPLE))
    assert offered_models(models, served={"nails", "people", "detect"}) == [
        {"id": "nails", "label": "nails", "hint": "Your segment model"},
        {"id": "people", "label": "people", "hint": "Your pose model"},
    ]
    assert [m["id"] for m in offered_models(models)] == ["shapes", "nails", "people"]
    assert offered_models(()) == []


def test_defaults_are_coco_and_a_uint8_graph_takes_hwc(tmp_path: Path) -> None:
    model = {**SHAPES, "labels": None, "uint8_input": True, "max_batch_size": 1}
    spec = model_catalog(declare(tmp_path, {k: v for k, v in model.items() if v is not None}))[
        "shapes"
    ]
    assert spec.inputs[0].dtype is DType.UINT8
    assert spec.inputs[0].dims == (320, 320, 3)
    assert spec.outputs[0].dims == (4 + len(COCO_LABELS), 2100)
    assert (spec.max_batch_size, spec.batching) == (1, None), "batch 1: no dynamic batcher"


@pytest.mark.parametrize("target", list(Target))
def test_the_repository_serves_a_user_model(tmp_path: Path, target: Target) -> None:
    spec = model_catalog(declare(tmp_path, SHAPES))["shapes"]
    out = tmp_path / "repo"
    write_repository(out, target, [spec])
    assert (out / "shapes" / "1" / "model.onnx").read_bytes() == b"onnx"
    config = model_config(spec, target)
    assert [(i.name, list(i.dims)) for i in config.input] == [("images", [3, 320, 320])]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([{**SHAPES, "layout": "yolov8-classify"}], "layout"),
        ([{**NAILS, "protos_name": "output0"}], "protos_name and output_name must differ"),
        ([{**SHAPES, "input_size": 300}], "multiple of 32"),
        ([{**SHAPES, "name": "Bad Name"}], "name"),
        ([{**SHAPES, "labels": []}], "labels must not be empty"),
        ([{**PEOPLE, "labels": ["a", "b"]}], "exactly one class"),
        ([{**SHAPES, "input_sise": 320}], "input_sise"),
        ([{k: v for k, v in SHAPES.items() if k != "file"}], "file"),
        ([SHAPES, SHAPES], r"declared twice: \['shapes'\]"),
        ([{**SHAPES, "name": "detect"}], r"\['detect'\] already name built-in models"),
    ],
)
def test_bad_declarations_are_named(
    tmp_path: Path, models: list[dict[str, Any]], message: str
) -> None:
    path = declare(tmp_path, *models)
    with pytest.raises(UserModelError, match=message) as caught:
        model_catalog(path)
    assert str(path) in str(caught.value)


def test_a_declared_file_must_be_there(tmp_path: Path) -> None:
    path = declare(tmp_path, SHAPES, files=False)
    with pytest.raises(UserModelError, match=r"'shapes': shapes\.onnx is not there"):
        model_catalog(path)


def test_bad_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "user_models.json"
    path.write_text('{"models": [')
    with pytest.raises(UserModelError, match=r"user_models\.json"):
        read_user_models(path)
