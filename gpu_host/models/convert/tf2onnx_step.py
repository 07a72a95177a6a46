"""TF.js and TFLite files → raw ONNX, through tf2onnx in the throw-away TensorFlow venv."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from gpu_host.models.convert.sources import run

OPSET = 17

_CONV_ATTRS = ("T", "strides", "padding", "data_format", "dilations", "explicit_paddings")
_FUSED = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative"}


def expand_fused_ops(model_json: dict[str, Any]) -> dict[str, Any]:
    """Rewrite TF.js `_FusedConv2D` / `FusedDepthwiseConv2dNative` into plain TF ops.

    TF.js stores grappler's fused convolutions without the `TArgs` attribute that TensorFlow
    needs to import them, so tf2onnx fails on them. Each becomes Conv2D (or
    DepthwiseConv2dNative), BiasAdd and the optional activation; the last of them keeps the
    fused node's name so that every consumer still finds its input.
    """
    out = copy.deepcopy(model_json)
    nodes: list[dict[str, Any]] = []
    for node in out["modelTopology"]["node"]:
        if node["op"] not in _FUSED:
            nodes.append(node)
            continue
        fused = [base64.b64decode(s).decode() for s in node["attr"]["fused_ops"]["list"]["s"]]
        if fused[0] != "BiasAdd" or len(fused) > 2 or len(node["input"]) != 3:
            raise ValueError(f"unsupported fused op {node['name']}: {fused}")
        attrs = {k: v for k, v in node["attr"].items() if k in _CONV_ATTRS}
        if not attrs.get("explicit_paddings", {}).get("list"):
            attrs.pop("explicit_paddings", None)
        name = node["name"]
        conv, bias = f"{name}/conv", (f"{name}/bias_add" if len(fused) == 2 else name)
        data, weights, offset = node["input"]
        nodes.append(
            {"name": conv, "op": _FUSED[node["op"]], "input": [data, weights], "attr": attrs}
        )
        nodes.append(
            {
                "name": bias,
                "op": "BiasAdd",
                "input": [conv, offset],
                "attr": {"T": attrs["T"], "data_format": attrs["data_format"]},
            }
        )
        if len(fused) == 2:
            nodes.append({"name": name, "op": fused[1], "input": [bias], "attr": {"T": attrs["T"]}})
    out["modelTopology"]["node"] = nodes
    return out


def convert(kind: str, files: list[Path], raw: Path, tf_python: Path) -> Path:
    """Source model file(s) → `raw` ONNX, names and shapes as the converter leaves them."""
    if kind == "onnx":
        raw.write_bytes(files[0].read_bytes())
        return raw
    tf2onnx: list[str | Path] = [
        tf_python,
        "-m",
        "tf2onnx.convert",
        "--opset",
        str(OPSET),
        "--output",
        raw,
    ]
    if kind == "tflite":
        run([*tf2onnx, "--tflite", files[0]])
        return raw
    if kind == "tfjs":
        folder = raw.with_suffix(".tfjs")
        folder.mkdir(parents=True, exist_ok=True)
        graph = json.loads(files[0].read_text())
        (folder / files[0].name).write_text(json.dumps(expand_fused_ops(graph)))
        for weights in files[1:]:  # the JSON names its weight files relative to itself
            (folder / weights.name).write_bytes(weights.read_bytes())
        run([*tf2onnx, "--tfjs", folder / files[0].name])
        return raw
    raise ValueError(f"unknown model kind {kind!r}")
