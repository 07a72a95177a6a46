"""MediaPipe's `Convolution2DTransposeBias` custom op → a standard ONNX ConvTranspose.

The selfie segmentation model ends in this TFLite custom op (MediaPipe registers it in its
own op resolver; TensorFlow has no kernel for it), which tf2onnx cannot convert: it leaves a
`TFL_Convolution2DTransposeBias` node that no runtime runs. The op is TFLite's
TRANSPOSE_CONV with a bias: input NHWC, weights OHWI, bias [O]. Its options (the raw
`TfLiteTransposeConvParams` struct: padding, stride_w, stride_h) are lost in the
conversion, so the recipe states them; `replace_transpose_conv_bias` checks that the
weights and the graph's declared output shape agree with them.
"""

from __future__ import annotations

import copy

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

OP_TYPE = "TFL_Convolution2DTransposeBias"


def _initializer(graph: onnx.GraphProto, name: str) -> npt.NDArray[np.float32]:
    for init in graph.initializer:
        if init.name == name:
            return np.asarray(numpy_helper.to_array(init), dtype=np.float32)
    raise ValueError(f"{OP_TYPE}: {name!r} is not a constant")


def replace_transpose_conv_bias(model: onnx.ModelProto, stride: int) -> onnx.ModelProto:
    """Every `TFL_Convolution2DTransposeBias` node → Transpose, ConvTranspose, Transpose.

    Only the case the zoo needs is accepted: kernel == stride (SAME padding then pads
    nothing and every output pixel comes from exactly one input pixel).
    """
    out = copy.deepcopy(model)
    graph = out.graph
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != OP_TYPE:
            nodes.append(node)
            continue
        data, weights_name, bias_name = node.input
        weights = _initializer(graph, weights_name)  # OHWI
        bias = _initializer(graph, bias_name)
        if weights.shape[1:3] != (stride, stride):
            raise ValueError(f"{node.name}: kernel {weights.shape[1:3]} is not the stride")
        if bias.shape != (weights.shape[0],):
            raise ValueError(f"{node.name}: bias {bias.shape} for {weights.shape[0]} channels")
        name = node.name or node.output[0]
        w_name, b_name = f"{name}/weights_iohw", f"{name}/bias"
        # ONNX ConvTranspose weights are [C_in, C_out, kH, kW]; neither flips the kernel.
        graph.initializer.append(numpy_helper.from_array(weights.transpose(3, 0, 1, 2), w_name))
        graph.initializer.append(numpy_helper.from_array(bias, b_name))
        nchw, conv = f"{name}/nchw", f"{name}/conv"
        nodes.append(helper.make_node("Transpose", [data], [nchw], perm=[0, 3, 1, 2]))
        nodes.append(
            helper.make_node(
                "ConvTranspose",
                [nchw, w_name, b_name],
                [conv],
                name=conv,
                kernel_shape=[stride, stride],
                strides=[stride, stride],
            )
        )
        nodes.append(helper.make_node("Transpose", [conv], [node.output[0]], perm=[0, 2, 3, 1]))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return out


def reference(
    x: npt.NDArray[np.float32], weights: npt.NDArray[np.float32], bias: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """TFLite TRANSPOSE_CONV + bias for kernel == stride, in NumPy (NHWC, OHWI weights).

    out[n, y*s + ky, x*s + kx, o] = sum_i x[n, y, x, i] * w[o, ky, kx, i] + b[o]
    """
    n, h, w, _ = x.shape
    o, s, _, _ = weights.shape
    blocks = np.einsum("nyxi,okli->nykxlo", x, weights)  # [n, h, ky, w, kx, o]
    out: npt.NDArray[np.float32] = (blocks.reshape(n, h * s, w * s, o) + bias).astype(np.float32)
    return out
