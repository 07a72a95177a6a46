"""`python -m gpu_host.models add`: checks, batching, the declaration, and every refusal.

The exports are small random-weight graphs with Ultralytics' layouts (`yolo_exports`); the
command runs in-process through its `main`, as a user would run it, against a temporary
user folder. Serving them through the real Triton is tests/integration/models/test_add_served.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gpu_host.models import __main__ as cli
from gpu_host.models.add import install as install_module
from gpu_host.models.convert import sources, tf2onnx_step
from gpu_host.models.spec import DType, load_processor, model_catalog
from gpu_host.vision.yolov8 import Yolov8Processor
from tests.unit.models.yolo_exports import (
    DETECT_LABELS,
    KEYPOINTS,
    MASKS,
    PROTO_SIDE,
    SEGMENT_BITMAP,
    SIZE,
    Outputs,
    detect_outputs,
    pose_outputs,
    segment_outputs,
    unbatched_image_graph,
    yolo_graph,
)

FRAME = np.full((64, 128, 3), 90, np.uint8)


def save(folder: Path, model: onnx.ModelProto, name: str = "export.onnx") -> Path:
    path = folder / name
    onnx.save(model, str(path))
    return path


def labels_file(folder: Path, labels: tuple[str, ...], *, as_json: bool = False) -> Path:
    path = folder / ("labels.json" if as_json else "labels.txt")
    path.write_text(json.dumps(list(labels)) if as_json else "\n".join(labels) + "\n\n")
    return path


def add(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = cli.main(["add", *(str(a) for a in args)])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "user"
    folder.mkdir()
    return folder


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


CASES: dict[str, tuple[Outputs, tuple[str, ...] | None]] = {
    "detect": (detect_outputs(), DETECT_LABELS),
    "segment": (segment_outputs(), ("nail",)),
    "pose": (pose_outputs(), None),
}


@pytest.mark.parametrize("task", list(CASES))
def test_a_fixed_batch_export_is_added_with_a_dynamic_batch(
    task: str, user_dir: Path, exports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs, labels = CASES[task]
    export = save(exports, yolo_graph(outputs))
    extra: list[str | Path] = ["--labels", labels_file(exports, labels)] if labels else []
    code, out, err = add(
        capsys, export, "--task", task, "--name", f"my-{task}", "--user-dir", user_dir, *extra
    )
    assert (code, err) == (0, "")
    assert "batch dimension made dynamic" in out
    assert "Triton batches up to 8" in out
    assert f"pick 'my-{task}'" in out

    spec = model_catalog(user_dir / "user_models.json")[f"my-{task}"]
    assert spec.max_batch_size == 8
    assert [(t.name, t.dtype, t.dims) for t in spec.inputs] == [
        ("images", DType.FP32, (3, SIZE, SIZE))
    ]
    assert [(t.name, t.dims) for t in spec.outputs] == [
        (name, value.shape) for name, value in outputs.items()
    ]
    # The written graph takes a batch of 3 and gives the known outputs for each item.
    written = ort.InferenceSession(str(user_dir / f"my-{task}.onnx"))
    images = np.random.default_rng(2).random((3, 3, SIZE, SIZE), dtype=np.float32)
    for got, want in zip(written.run(None, {"images": images}), outputs.values(), strict=True):
        assert got.shape == (3, *want.shape)
        np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), atol=1e-5)


def test_the_declared_models_decode_as_their_task(user_dir: Path, exports: Path) -> None:
    """Each added model's processor, fed its graph's output, finds the known thing."""
    for task, (outputs, labels) in CASES.items():
        extra = ["--labels", str(labels_file(exports, labels))] if labels else []
        path = str(save(exports, yolo_graph(outputs), f"{task}.onnx"))
        assert (
            cli.main(
                [
                    "add",
                    path,
                    "--task",
                    task,
                    "--name",
                    task + "s",
                    "--user-dir",
                    str(user_dir),
                    *extra,
                ]
            )
            == 0
        )
    catalog = model_catalog(user_dir / "user_models.json")
    results = {}
    for task in CASES:
        processor = load_processor(catalog[task + "s"])
        assert isinstance(processor, Yolov8Processor)
        _, letterbox = processor.preprocess(FRAME)
        results[task] = processor.postprocess(CASES[task][0], letterbox)
    (detection,) = results["detect"].detections
    assert detection.label == "square"
    assert detection.score == pytest.approx(0.9)
    (mask,) = results["segment"].masks
    assert (mask.label, mask.box) == ("nail", results["segment"].detections[0].box)
    assert mask.bitmap.tolist() == SEGMENT_BITMAP
    (pose,) = results["pose"].keypoints
    assert len(pose.points) == KEYPOINTS


def test_a_graph_that_cannot_take_a_batch_is_served_unbatched(
    user_dir: Path, exports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = save(exports, yolo_graph(detect_outputs(), batchable=False))
    code, out, _ = add(
        capsys,
        export,
        "--task",
        "detect",
        "--name",
        "fixed",
        "--user-dir",
        user_dir,
        "--labels",
        labels_file(exports, DETECT_LABELS),
    )
    assert code == 0
    assert "does not take a batch (a batch of 2 fails" in out
    assert "served unbatched (max_batch_size 1)" in out
    spec = model_catalog(user_dir / "user_models.json")["fixed"]
    assert (spec.max_batch_size, spec.batching) == (1, None)
    written = onnx.load(str(user_dir / "fixed.onnx"))
    assert written.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1


def test_an_already_dynamic_export_stays_batched(
    user_dir: Path, exports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = save(exports, yolo_graph(detect_outputs(80), fixed_batch=False))
    code, out, _ = add(capsys, export, "--task", "detect", "--name", "coco", "--user-dir", user_dir)
    assert code == 0
    assert "already dynamic" in out
    declared = json.loads((user_dir / "user_models.json").read_text())["models"]
    assert "labels" not in declared[0], "80 classes default to COCO's"


def test_a_free_input_size_is_pinned_to_the_size_given(
    user_dir: Path, exports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`yolo export dynamic=True` leaves height and width free: `add` needs `--size`."""
    export = save(exports, yolo_graph(detect_outputs(80), fixed_batch=False, free_size=True))
    args: list[str | Path] = [export, "--task", "detect", "--name", "free", "--user-dir", user_dir]
    code, _, err = add(capsys, *args)
    assert code == 2
    assert "leaves its size free" in err
    assert "--size" in err
    code, _, err = add(capsys, *args, "--size", str(SIZE))
    assert (code, err) == (0, "")
    written = onnx.load(str(user_dir / "free.onnx"))
    dims = written.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, SIZE, SIZE]
    assert model_catalog(user_dir / "user_models.json")["free"].inputs[0].dims == (3, SIZE, SIZE)


def test_a_channels_last_float_input_is_served_channels_first(
    user_dir: Path, exports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TFLite conversion takes float32 [1, S, S, 3]: it gets a Transpose in front, so the
    processor feeds it [3, S, S] like any ONNX export."""
    export = save(exports, yolo_graph(pose_outputs(), nhwc=True))
    code, _, err = add(capsys, export, "--task", "pose", "--name", "tfl", "--user-dir", user_dir)
    assert (code, err) == (0, "")
    spec = model_catalog(user_dir / "user_models.json")["tfl"]
    assert spec.inputs[0].dims == (3, SIZE, SIZE)
    written = ort.InferenceSession(str(user_dir / "tfl.onnx"))
    (out,) = written.run(None, {spec.inputs[0].name: np.zeros((2, 3, SIZE, SIZE), np.float32)})
    np.testing.assert_allclose(out[1], pose_outputs()["output0"])


def test_channels_last_prototypes_are_transposed_for_the_processor(
    user_dir: Path, exports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TFLite segment conversion: NHWC input and prototypes [1, S/4, S/4, M]. Both get a
    Transpose, and the declared model decodes the same mask as the ONNX export's."""
    outputs = segment_outputs()
    outputs["output1"] = np.ascontiguousarray(outputs["output1"].transpose(1, 2, 0))
    export = save(exports, yolo_graph(outputs, nhwc=True))
    labels = labels_file(exports, ("nail",))
    code, _, err = add(
        capsys,
        export,
        "--task",
        "segment",
        "--name",
        "tfl",
        "--user-dir",
        user_dir,
        "--labels",
        labels,
    )
    assert (code, err) == (0, "")
    spec = model_catalog(user_dir / "user_models.json")["tfl"]
    assert [t.dims for t in spec.outputs] == [(9, 84), (MASKS, PROTO_SIDE, PROTO_SIDE)]
    written = ort.InferenceSession(str(user_dir / "tfl.onnx"))
    images = np.zeros((1, 3, SIZE, SIZE), np.float32)
    values = written.run([t.name for t in spec.outputs], {spec.inputs[0].name: images})
    processor = load_processor(spec)
    _, letterbox = processor.preprocess(FRAME)
    result = processor.postprocess(
        {t.name: v[0] for t, v in zip(spec.outputs, values, strict=True)}, letterbox
    )
    (mask,) = result.masks
    assert mask.bitmap.tolist() == SEGMENT_BITMAP


def test_a_tflite_file_is_converted_through_the_conversion_venv(
    user_dir: Path,
    exports: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The plumbing only (no TensorFlow here): the venv is asked for, tf2onnx's step runs on
    the file, and the entry says the coordinates are normalized, as TFLite exports give them."""
    tflite = exports / "best_float32.tflite"
    tflite.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    calls: list[Any] = []
    monkeypatch.setattr(sources, "ensure_tf_venv", lambda venv: venv / "bin" / "python")

    def fake_convert(kind: str, files: list[Path], raw: Path, tf_python: Path) -> Path:
        calls.append((kind, files, tf_python))
        onnx.save(yolo_graph(pose_outputs(), nhwc=True), str(raw))
        return raw

    monkeypatch.setattr(tf2onnx_step, "convert", fake_convert)
    code, out, _ = add(
        capsys,
        tflite,
        "--task",
        "pose",
        "--name",
        "tfl",
        "--user-dir",
        user_dir,
        "--tf-venv",
        exports / "venv",
    )
    assert code == 0
    assert calls == [("tflite", [tflite], exports / "venv" / "bin" / "python")]
    assert "converted from TFLite" in out
    (entry,) = json.loads((user_dir / "user_models.json").read_text())["models"]
    assert entry["normalized_coordinates"] is True


def test_a_tflite_file_without_a_conversion_venv_is_refused_saying_how(
    user_dir: Path,
    exports: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tflite = exports / "best.tflite"
    tflite.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))

    def no_network(venv: Path) -> Path:
        raise subprocess.CalledProcessError(1, ["pip", "install"])

    monkeypatch.setattr(sources, "ensure_tf_venv", no_network)
    before = snapshot(user_dir)
    code, _, err = add(capsys, tflite, "--task", "detect", "--name", "t", "--user-dir", user_dir)
    assert code == 2
    assert "TensorFlow conversion venv" in err
    assert "pip install tensorflow-cpu==" in err
    assert "Traceback" not in err
    assert snapshot(user_dir) == before


def declare_one(user_dir: Path, exports: Path) -> None:
    path = save(exports, yolo_graph(detect_outputs(80)), "taken.onnx")
    assert (
        cli.main(
            ["add", str(path), "--task", "detect", "--name", "taken", "--user-dir", str(user_dir)]
        )
        == 0
    )


def wrong_anchors() -> onnx.ModelProto:
    outputs = detect_outputs()
    return yolo_graph({"output0": outputs["output0"][:, :80]})


REFUSALS: list[tuple[str, Any, list[str], str]] = [
    # (case, export builder → bytes or graph, extra args, message)
    ("not onnx", b"this is not a model\n", [], "is not an ONNX model"),
    ("no batch dimension", unbatched_image_graph(), [], "expected 4 dimensions, a batch first"),
    (
        "detect graph as segment",
        yolo_graph(detect_outputs()),
        ["--task", "segment"],
        "a segment export has two outputs",
    ),
    (
        "segment graph as detect",
        yolo_graph(segment_outputs()),
        ["--task", "detect"],
        "use --task segment",
    ),
    ("wrong anchors", wrong_anchors(), [], "with 84 anchors"),
    (
        "pose rows",
        yolo_graph({"output0": np.zeros((4 + 1 + 4, 84), np.float32)}),
        ["--task", "pose"],
        "a pose export has 4 + 1 + 3·keypoints",
    ),
    (
        "protos of the wrong size",
        yolo_graph({**segment_outputs(), "output1": np.zeros((MASKS, 8, 8), np.float32)}),
        ["--task", "segment", "--labels", "ONE"],
        "prototype masks at 64 px are [B, M, 16, 16]",
    ),
    ("built-in name", yolo_graph(detect_outputs()), ["--name", "detect"], "a built-in model's"),
    ("declared name", yolo_graph(detect_outputs()), ["--name", "taken"], "declared already"),
    ("bad name", yolo_graph(detect_outputs()), ["--name", "My Model"], "lower-case letters"),
    (
        "labels mismatch",
        yolo_graph(detect_outputs()),
        ["--labels", "THREE"],
        "labels count mismatch: ",
    ),
    ("labels missing", yolo_graph(detect_outputs()), [], "the graph has 2 classes: name them"),
]


@pytest.mark.parametrize(
    ("export", "extra", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_what_cannot_be_served_is_refused_and_nothing_is_written(
    export: Any,
    extra: list[str],
    message: str,
    user_dir: Path,
    exports: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    declare_one(user_dir, exports)
    capsys.readouterr()
    path = exports / "candidate.onnx"
    path.write_bytes(export if isinstance(export, bytes) else export.SerializeToString())
    label_files = {
        "ONE": labels_file(exports, ("nail",), as_json=True),
        "THREE": labels_file(exports, ("a", "b", "c")),
    }
    args = {"--task": "detect", "--name": "fresh"}
    flags = dict(zip(extra[::2], extra[1::2], strict=True))
    args.update({k: str(label_files.get(v, v)) for k, v in flags.items()})
    before = snapshot(user_dir)
    code, out, err = add(
        capsys, path, *[x for kv in args.items() for x in kv], "--user-dir", user_dir
    )
    assert code == 2
    assert err.startswith("refused: ")
    assert message in err
    assert "Traceback" not in err
    assert out == ""
    assert snapshot(user_dir) == before


def test_a_failure_while_declaring_removes_the_copied_model(
    user_dir: Path, exports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = install_module._write_atomically

    def json_fails(path: Path, data: bytes) -> None:
        if path.suffix == ".json":
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(install_module, "_write_atomically", json_fails)
    export = save(exports, yolo_graph(detect_outputs(80)))
    with pytest.raises(OSError, match="disk full"):
        cli.main(
            ["add", str(export), "--task", "detect", "--name", "coco", "--user-dir", str(user_dir)]
        )
    assert list(user_dir.iterdir()) == []


def test_a_broken_declaration_file_is_refused_untouched(
    user_dir: Path, exports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (user_dir / "user_models.json").write_text('{"models": [')
    before = snapshot(user_dir)
    export = save(exports, yolo_graph(detect_outputs(80)))
    code, _, err = add(capsys, export, "--task", "detect", "--name", "coco", "--user-dir", user_dir)
    assert code == 2
    assert "is broken; fix it first" in err
    assert snapshot(user_dir) == before


@pytest.mark.parametrize("as_json", [False, True])
def test_labels_come_from_text_or_json(
    as_json: bool, user_dir: Path, exports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = save(exports, yolo_graph(segment_outputs()))
    labels = labels_file(exports, ("nail",), as_json=as_json)
    code, _, _ = add(
        capsys,
        export,
        "--task",
        "segment",
        "--name",
        "nails",
        "--user-dir",
        user_dir,
        "--labels",
        labels,
    )
    assert code == 0
    spec = model_catalog(user_dir / "user_models.json")["nails"]
    assert spec.processor_args["labels"] == ("nail",)
    assert spec.outputs[1].dims == (MASKS, PROTO_SIDE, PROTO_SIDE)
