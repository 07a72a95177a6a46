"""MANIFEST.json and the licence files beside the committed models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto

from gpu_host.models.convert.recipes import HUMAN_MODELS, RECIPES, TEXT_DET, Recipe
from gpu_host.models.convert.sources import Package, sha256
from gpu_host.models.convert.tf2onnx_step import OPSET

_DTYPES: dict[int, str] = {
    TensorProto.UINT8: "uint8",
    TensorProto.FLOAT: "float32",
    TensorProto.INT32: "int32",
}


def tensor_specs(values: Sequence[onnx.ValueInfoProto]) -> list[dict[str, Any]]:
    """Name, dtype and shape (-1 where dynamic) of each tensor."""
    specs = []
    for value in values:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        specs.append({"name": value.name, "dtype": _DTYPES[tensor.elem_type], "shape": dims})
    return specs


def graph_io(model: onnx.ModelProto) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    return tensor_specs(inputs), tensor_specs(model.graph.output)


def model_entry(
    recipe: Recipe, model: onnx.ModelProto, path: Path, dynamic: bool, archive: Path
) -> dict[str, Any]:
    inputs, outputs = graph_io(model)
    return {
        "file": path.name,
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
        "source": {
            "registry": recipe.package.registry,
            "package": recipe.package.name,
            "version": recipe.package.version,
            "member": recipe.members[0],
            "archive_sha256": sha256(archive),
        },
        "upstream": recipe.upstream,
        "license": recipe.license,
        "dynamic_batch": dynamic,
        "inputs": inputs,
        "outputs": outputs,
        "normalization": recipe.prefix.describe() + ", inside the graph",
        "preprocess": recipe.preprocess,
        **recipe.extra,
    }


def text_det_entry(path: Path) -> dict[str, Any]:
    """The text detector, placed by another step: described from the file itself."""
    inputs, outputs = graph_io(onnx.load(str(path)))
    return {
        **TEXT_DET,
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
        "dynamic_batch": inputs[0]["shape"][0] == -1,
        "inputs": inputs,
        "outputs": outputs,
    }


def manifest(models: dict[str, Any], zoo: Path, tf_pins: Sequence[str]) -> dict[str, Any]:
    """The whole manifest; `files` checksums every other file in the zoo (licences, charset)."""
    others = sorted(
        p
        for p in zoo.rglob("*")
        if p.is_file() and p.suffix != ".onnx" and p.name != "MANIFEST.json"
    )
    return {
        "generated_by": "python -m gpu_host.models.convert --out gpu_host/models/zoo",
        "converter": {"tf_venv": list(tf_pins), "opset": OPSET},
        "models": dict(sorted(models.items())),
        "files": {p.relative_to(zoo).as_posix(): sha256(p) for p in others},
    }


def apache_text(license_file: str) -> str:
    """The Apache-2.0 text alone, cut before MediaPipe's third-party appendix."""
    return license_file.split("\n=====", 1)[0].rstrip() + "\n"


def notice(archives: dict[Package, Path]) -> str:
    lines = [
        "# Model notices",
        "",
        "Every model here comes from a pinned registry package and was converted by",
        "`python -m gpu_host.models.convert`. The weights are unchanged; the edits are the",
        "uint8 input cast and normalization, tensor names, the batch dimension, float16",
        "storage of weights that were float16 already, MoveNet's decoding head rebuilt",
        "to take a batch, and the selfie segmentation model's last layer (MediaPipe's",
        "Convolution2DTransposeBias custom op) written as the standard ConvTranspose.",
        "",
    ]
    for recipe in RECIPES:
        lines += [
            f"## {recipe.name}.onnx",
            "",
            f"- Source: {recipe.package.registry} `{recipe.package.spec}`, `{recipe.members[0]}`"
            f" (archive sha256 `{sha256(archives[recipe.package])}`)",
            f"- Model: {recipe.upstream}",
            f"- Licence: {recipe.license} (`Apache-2.0.txt`)",
            "",
        ]
    source = TEXT_DET["source"]
    lines += [
        "## text_det.onnx",
        "",
        f"- Source: pypi `{source['package']}=={source['version']}`, `{source['member']}`",
        f"- Model: {TEXT_DET['upstream']}",
        "- Licence: Apache-2.0 (`Apache-2.0.txt`)",
        "",
        "## Packaging",
        "",
        f"The TF.js files come from the npm package `{HUMAN_MODELS.spec}`, which is MIT",
        "(`human-models-MIT.txt`); the weights keep their upstream licences above.",
        "",
    ]
    return "\n".join(lines)
