"""Give an image model a uint8 NHWC input: normalization moves from the wire into the graph.

A float32 NCHW tensor is 4× the bytes of the uint8 image it came from, and on this path every
byte crosses gRPC (~1.5 ms per MB through Triton). Prepending Cast → (channel swap) →
Transpose → Sub → Mul to the graph lets clients send the letterboxed RGB image as it is;
the arithmetic then runs on the accelerator, identically for the `gpu` and `local` targets.

Build-time only: needs the `onnx` package (a dev dependency), never imported by the backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Layout = Literal["NCHW", "NHWC"]


def prepend_uint8_image_input(
    model: onnx.ModelProto,
    *,
    input_name: str,
    height: int,
    width: int,
    mean: Sequence[float],
    std: Sequence[float],
    layout: Layout = "NCHW",
    bgr: bool = False,
    model_input: str | None = None,
) -> onnx.ModelProto:
    """Return a copy of `model` whose image input is `input_name`: uint8 [N, height, width, 3] RGB.

    The prefix computes `(pixel / 255 - mean) / std` per channel (mean/std in 0..1 units, in the
    model's channel order), optionally swaps RGB → BGR (`bgr=True`, for models trained on
    OpenCV-loaded images) and transposes to `layout`, then feeds the model's original image
    input (`model_input`, default: its only graph input). The batch dimension stays dynamic
    (named "N") so Triton can batch; height and width become fixed.
    """
    if len(mean) != 3 or len(std) != 3 or any(s == 0 for s in std):
        raise ValueError("mean and std need 3 values each, std non-zero")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    original = _pick_input(graph, model_input)
    if original.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ValueError(f"input {original.name!r} is not float32")
    if input_name in {i.name for i in graph.input} | {o.name for o in graph.output}:
        raise ValueError(f"{input_name!r} already names a graph input or output")

    prefix = f"{input_name}__prep"
    channel_shape = [1, 3, 1, 1] if layout == "NCHW" else [1, 1, 1, 3]
    # (x/255 - mean)/std == (x - 255*mean) * 1/(255*std): one Sub and one Mul per pixel.
    offset = np.asarray([255.0 * m for m in mean], np.float32).reshape(channel_shape)
    gain = np.asarray([1.0 / (255.0 * s) for s in std], np.float32).reshape(channel_shape)
    graph.initializer.extend(
        [
            numpy_helper.from_array(offset, f"{prefix}_offset"),
            numpy_helper.from_array(gain, f"{prefix}_gain"),
        ]
    )

    nodes: list[onnx.NodeProto] = []
    current = input_name

    def step(op: str, inputs: list[str], **attrs: Any) -> None:
        nonlocal current
        name = f"{prefix}_{len(nodes)}_{op.lower()}"
        nodes.append(helper.make_node(op, [current, *inputs], [name], name=name, **attrs))
        current = name

    step("Cast", [], to=TensorProto.FLOAT)
    if bgr:
        graph.initializer.append(
            numpy_helper.from_array(np.asarray([2, 1, 0], np.int64), f"{prefix}_bgr")
        )
        step("Gather", [f"{prefix}_bgr"], axis=3)
    if layout == "NCHW":
        step("Transpose", [], perm=[0, 3, 1, 2])
    step("Sub", [f"{prefix}_offset"])
    # The last node writes the original input's name, so every consumer is left untouched.
    nodes.append(
        helper.make_node(
            "Mul", [current, f"{prefix}_gain"], [original.name], name=f"{prefix}_normalize"
        )
    )

    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *existing])
    new_input = helper.make_tensor_value_info(
        input_name, TensorProto.UINT8, ["N", height, width, 3]
    )
    kept = [i for i in graph.input if i.name != original.name]
    del graph.input[:]
    graph.input.extend([new_input, *kept])
    onnx.checker.check_model(out)
    return out


def rename_outputs(model: onnx.ModelProto, names: Mapping[str, str]) -> onnx.ModelProto:
    """Return a copy of `model` whose graph outputs `old` are exposed as `new` (Identity nodes).

    Converted graphs name outputs after internal ops (`sigmoid_0.tmp_0`, `Identity:0`); Triton
    tensor names must not contain ':' or '/', and a spec's names should say what they hold.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    outputs = {o.name: o for o in graph.output}
    missing = set(names) - set(outputs)
    if missing:
        raise ValueError(f"no graph outputs named {sorted(missing)}; have {sorted(outputs)}")
    renamed: list[onnx.ValueInfoProto] = []
    for value in graph.output:
        new_name = names.get(value.name)
        if new_name is None:
            renamed.append(value)
            continue
        graph.node.append(
            helper.make_node("Identity", [value.name], [new_name], name=f"{new_name}__out")
        )
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(value)
        copy.name = new_name
        renamed.append(copy)
    del graph.output[:]
    graph.output.extend(renamed)
    onnx.checker.check_model(out)
    return out


def _pick_input(graph: onnx.GraphProto, name: str | None) -> onnx.ValueInfoProto:
    initializers = {i.name for i in graph.initializer}
    candidates = [i for i in graph.input if i.name not in initializers]
    if name is not None:
        candidates = [i for i in candidates if i.name == name]
    if len(candidates) != 1:
        raise ValueError(
            f"cannot pick the image input (asked {name!r}, have {[i.name for i in graph.input]})"
        )
    picked: onnx.ValueInfoProto = candidates[0]
    return picked
