"""The file given to `add`: an ONNX graph, or a TFLite file converted once to one.

The TFLite conversion is the zoo's (`gpu_host.models.convert`): tf2onnx in the throw-away
TensorFlow venv, made on first use with pip (the only step that needs the network).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from gpu_host.models.add.errors import AddError
from gpu_host.models.convert import sources, tf2onnx_step

TFLITE_MAGIC = b"TFL3"
"""A TFLite flatbuffer's file identifier, at bytes 4..8."""


def is_tflite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(8)[4:8] == TFLITE_MAGIC


def load_onnx(path: Path) -> onnx.ModelProto:
    """The ONNX graph in `path`; `AddError` when it is not one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AddError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise AddError(f"{path} is not an ONNX model (it does not parse: {exc})") from exc
    if not model.graph.node or not model.graph.output:
        raise AddError(f"{path} is not an ONNX model (no graph in it)")
    return model


def convert_tflite(path: Path, tf_venv: Path) -> onnx.ModelProto:
    """`path` (TFLite) converted with tf2onnx in `tf_venv`, made first if needed."""
    try:
        tf_python = sources.ensure_tf_venv(tf_venv)
    except (subprocess.CalledProcessError, OSError) as exc:
        pins = " ".join(sources.TF_PINS)
        raise AddError(
            f"converting a TFLite file needs the TensorFlow conversion venv, and it could not "
            f"be made at {tf_venv} ({exc}). Make it by hand (pip must reach PyPI once): "
            f"python3.11 -m venv {tf_venv} && {tf_venv}/bin/pip install {pins} — or pass "
            "--tf-venv to one that has them, or export ONNX instead (yolo export format=onnx)"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="spinup-add-") as work:
        raw = Path(work) / "converted.onnx"
        try:
            tf2onnx_step.convert("tflite", [path], raw, tf_python)
        except subprocess.CalledProcessError as exc:
            raise AddError(f"tf2onnx could not convert {path} (exit {exc.returncode})") from exc
        return load_onnx(raw)
