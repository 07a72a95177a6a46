"""Pure ONNX graph edits: each takes a ModelProto and returns an edited copy."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

BATCH = "N"
"""dim_param of the batch dimension in every graph that allows a dynamic batch."""


@dataclass(frozen=True)
class Prefix:
    """The uint8 NHWC RGB input baked in front of a graph: `(x[..., order] - mean) / std`."""

    height: int | None
    width: int | None
    bgr: bool = False
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    nchw: bool = False
    to_int32: bool = False
    """The source graph takes int32 pixels 0..255 (MoveNet): only a Cast, no arithmetic."""

    def reference(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[Any]:
        """What the prefix computes, in NumPy (feeds the raw conversion when verifying)."""
        if self.to_int32:
            return image.astype(np.int32)
        x = image[..., ::-1] if self.bgr else image
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        normalized = (x.astype(np.float32) - mean) / std
        if self.nchw:
            normalized = normalized.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(normalized, dtype=np.float32)

    def describe(self) -> str:
        if self.to_int32:
            return "Cast uint8 -> int32 (the source graph takes 0..255 integers)"
        order = "RGB -> BGR, " if self.bgr else ""
        layout = ", NHWC -> NCHW" if self.nchw else ""
        return f"Cast uint8 -> float32, {order}(x - {list(self.mean)}) / {list(self.std)}{layout}"


def _initializer_names(model: onnx.ModelProto) -> set[str]:
    return {i.name for i in model.graph.initializer}


def rename_tensors(model: onnx.ModelProto, names: dict[str, str]) -> onnx.ModelProto:
    out = copy.deepcopy(model)
    graph = out.graph
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = names.get(value.name, value.name)
    return out


def add_uint8_prefix(
    model: onnx.ModelProto, prefix: Prefix, name: str = "image"
) -> onnx.ModelProto:
    """Replace the graph's single input by `name`: uint8 [N, H, W, 3] RGB, normalized inside."""
    out = copy.deepcopy(model)
    graph = out.graph
    inputs = [i for i in graph.input if i.name not in _initializer_names(out)]
    if len(inputs) != 1:
        raise ValueError(f"expected one graph input, found {[i.name for i in inputs]}")
    target = inputs[0].name
    graph.input.remove(inputs[0])
    input_shape = [1, prefix.height or "H", prefix.width or "W", 3]  # see make_batch_dynamic
    graph.input.insert(0, helper.make_tensor_value_info(name, TensorProto.UINT8, input_shape))

    def const(suffix: str, value: npt.NDArray[Any]) -> str:
        graph.initializer.append(numpy_helper.from_array(value, f"{name}/{suffix}"))
        return f"{name}/{suffix}"

    nodes: list[onnx.NodeProto] = []
    if prefix.to_int32:
        nodes.append(helper.make_node("Cast", [name], [target], to=TensorProto.INT32))
    else:
        # Planes first: the channel swap then moves whole planes, not every third float.
        channel_axis, per_channel = (1, (1, 3, 1, 1)) if prefix.nchw else (3, (1, 1, 1, 3))
        x = f"{name}/float"
        nodes.append(helper.make_node("Cast", [name], [x], to=TensorProto.FLOAT))
        if prefix.nchw:
            nodes.append(helper.make_node("Transpose", [x], [f"{name}/nchw"], perm=[0, 3, 1, 2]))
            x = f"{name}/nchw"
        if prefix.bgr:
            order = const("bgr", np.array([2, 1, 0], np.int64))
            nodes.append(
                helper.make_node("Gather", [x, order], [f"{name}/bgr_out"], axis=channel_axis)
            )
            x = f"{name}/bgr_out"
        # mean and std are given in the model's channel order (after any swap)
        mean = const("mean", np.array(prefix.mean, np.float32).reshape(per_channel))
        std = const("std", np.array(prefix.std, np.float32).reshape(per_channel))
        nodes.append(helper.make_node("Sub", [x, mean], [f"{name}/centred"]))
        nodes.append(helper.make_node("Div", [f"{name}/centred", std], [target]))
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
    return out


def prune(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the nodes and initializers that no graph output depends on."""
    out = copy.deepcopy(model)
    graph = out.graph
    needed = {o.name for o in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)
    return out


def fold_reshape_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Reshape targets computed from constants only → initializers.

    onnx-tf, which made some TF.js graphs, computes `[1, 80, -1]` through Add/ScatterND
    chains; folded, the leading 1 can become "copy the batch" (see `make_batch_dynamic`).
    """
    out = copy.deepcopy(model)
    graph = out.graph
    producers = {o: n for n in graph.node for o in n.output}
    constants = _initializer_names(out)

    def constant_ancestors(tensor: str, acc: dict[str, onnx.NodeProto]) -> bool:
        if tensor in constants or tensor == "":
            return True
        node = producers.get(tensor)
        if node is None:  # a graph input
            return False
        acc[node.name or node.output[0]] = node
        return all(constant_ancestors(i, acc) for i in node.input)

    order = {id(n): i for i, n in enumerate(graph.node)}
    for reshape in [n for n in graph.node if n.op_type == "Reshape"]:
        target = reshape.input[1]
        ancestors: dict[str, onnx.NodeProto] = {}
        if f"{target}/folded" in constants:  # shared by several Reshapes: folded already
            reshape.input[1] = f"{target}/folded"
            continue
        if target in constants or not constant_ancestors(target, ancestors):
            continue
        nodes = sorted(ancestors.values(), key=lambda n: order[id(n)])
        sub = helper.make_graph(
            nodes,
            "fold",
            [],
            [helper.make_empty_tensor_value_info(target)],
            initializer=list(graph.initializer),
        )
        evaluator = ReferenceEvaluator(helper.make_model(sub, opset_imports=out.opset_import))
        (value,) = list(evaluator.run([target], {}))
        folded = f"{target}/folded"
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), folded))
        constants.add(folded)
        reshape.input[1] = folded
    return prune(out)


def make_batch_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Batch dimension → `N` on every input and output; constant Reshape targets copy it.

    A Reshape target whose first entry is 1 gets 0 ("copy the input's dimension 0"). Stale
    value_info would pin the batch to 1, so it is dropped (ONNX Runtime infers it again).
    Whether the graph then really takes a batch is checked numerically by the caller.
    """
    out = copy.deepcopy(model)
    graph = out.graph
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = BATCH
    del graph.value_info[:]
    targets = {n.input[1] for n in graph.node if n.op_type == "Reshape"}
    for init in graph.initializer:
        if init.name in targets:
            shape = numpy_helper.to_array(init).copy()
            if shape.ndim == 1 and shape.size > 1 and shape[0] == 1:
                shape[0] = 0
                init.CopyFrom(numpy_helper.from_array(shape, init.name))
    return out


def store_float16(model: onnx.ModelProto, min_size: int = 64) -> onnx.ModelProto:
    """Store float32 weights that are exactly float16 values as float16, cast at load.

    TF.js models ship float16-quantized weights that tf2onnx widens to float32; storing them
    narrow halves the file with bit-identical results. Runtimes fold the Cast once at load.
    """
    out = copy.deepcopy(model)
    graph = out.graph
    casts: list[onnx.NodeProto] = []
    kept: list[onnx.TensorProto] = []
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype != np.float32 or value.size < min_size:
            kept.append(init)
            continue
        narrow = value.astype(np.float16)
        if not np.array_equal(narrow.astype(np.float32), value):
            kept.append(init)
            continue
        kept.append(numpy_helper.from_array(narrow, f"{init.name}/fp16"))
        casts.append(
            helper.make_node("Cast", [f"{init.name}/fp16"], [init.name], to=TensorProto.FLOAT)
        )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for i, node in enumerate(casts):
        graph.node.insert(i, node)
    return out


def order_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """Graph outputs in the given order (the order the manifest documents)."""
    out = copy.deepcopy(model)
    by_name = {o.name: o for o in out.graph.output}
    if set(by_name) != set(names):
        raise ValueError(f"graph outputs {sorted(by_name)} are not {sorted(names)}")
    ordered = [copy.deepcopy(by_name[n]) for n in names]
    del out.graph.output[:]
    out.graph.output.extend(ordered)
    return out


def infer_output_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Declare the output shapes ONNX shape inference finds (converters leave some unknown).

    Only the outputs' declarations are taken over; no value_info is kept.
    """
    out = copy.deepcopy(model)
    inferred = onnx.shape_inference.infer_shapes(out, strict_mode=True, data_prop=True)
    for declared, found in zip(out.graph.output, inferred.graph.output, strict=True):
        declared.type.CopyFrom(found.type)
    return out


def canonical_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Name each initializer after its first consumer and sort them: reproducible bytes.

    tf2onnx numbers the constants it creates in an order that changes from run to run; the
    nodes consuming them keep stable names, so naming a constant after its consumer makes
    two conversions of the same source byte-identical.
    """
    out = copy.deepcopy(model)
    graph = out.graph
    io = {v.name for v in [*graph.input, *graph.output]}
    initializers = {i.name for i in graph.initializer} - io
    names: dict[str, str] = {}
    for node in graph.node:
        for index, tensor in enumerate(node.input):
            if tensor in initializers and tensor not in names:
                names[tensor] = f"{node.name or node.output[0]}/input{index}"
    renamed = rename_tensors(out, names)
    for init in renamed.graph.initializer:
        init.name = names.get(init.name, init.name)
    ordered = sorted(renamed.graph.initializer, key=lambda i: i.name)
    del renamed.graph.initializer[:]
    renamed.graph.initializer.extend(ordered)
    return renamed
