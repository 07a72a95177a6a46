"""MediaPipe's Convolution2DTransposeBias, as tf2onnx leaves it, rewritten as ConvTranspose."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from gpu_host.models.convert.transpose_conv import (
    OP_TYPE,
    reference,
    replace_transpose_conv_bias,
)

Floats = npt.NDArray[np.float32]
RNG = np.random.default_rng(7)


def unconverted(weights: Floats, bias: Floats, h: int, w: int) -> onnx.ModelProto:
    """A graph ending in the custom op, as tf2onnx writes it (NHWC in, OHWI weights)."""
    out_c, k, _, in_c = weights.shape
    node = helper.make_node(OP_TYPE, ["x", "w", "b"], ["y"], name="segment")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, h, w, in_c])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, h * k, w * k, out_c])],
        initializer=[numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what tf2onnx writes; the installed ONNX Runtime reads up to 13
    return model


def by_the_definition(x: Floats, weights: Floats, bias: Floats) -> Floats:
    """TFLite's reference TRANSPOSE_CONV, loop by loop: each input pixel spreads its
    channels through the kernel onto the output pixels it covers (no padding: k == s)."""
    n, h, w, _ = x.shape
    out_c, s, _, _ = weights.shape
    out = np.tile(bias, (n, h * s, w * s, 1)).astype(np.float32)
    for y in range(h):
        for xx in range(w):
            for ky in range(s):
                for kx in range(s):
                    for o in range(out_c):
                        out[:, y * s + ky, xx * s + kx, o] += x[:, y, xx, :] @ weights[o, ky, kx]
    return out


@pytest.mark.parametrize(("out_c", "in_c", "stride"), [(1, 16, 2), (3, 5, 2), (2, 4, 3)])
def test_replacement_computes_the_custom_op(out_c: int, in_c: int, stride: int) -> None:
    weights = RNG.normal(size=(out_c, stride, stride, in_c)).astype(np.float32)
    bias = RNG.normal(size=(out_c,)).astype(np.float32)
    x = RNG.normal(size=(2, 3, 4, in_c)).astype(np.float32)
    model = replace_transpose_conv_bias(unconverted(weights, bias, 3, 4), stride=stride)
    onnx.checker.check_model(model)
    assert OP_TYPE not in {n.op_type for n in model.graph.node}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(["y"], {"x": x})
    want = by_the_definition(x, weights, bias)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(reference(x, weights, bias), want, atol=1e-5)


def test_the_custom_ops_own_weights_are_dropped() -> None:
    weights = np.ones((1, 2, 2, 3), np.float32)
    model = replace_transpose_conv_bias(unconverted(weights, np.zeros(1, np.float32), 2, 2), 2)
    assert {i.name for i in model.graph.initializer} == {"segment/weights_iohw", "segment/bias"}


def test_a_kernel_other_than_the_stride_is_refused() -> None:
    weights = np.ones((1, 3, 3, 4), np.float32)
    with pytest.raises(ValueError, match="kernel"):
        replace_transpose_conv_bias(unconverted(weights, np.zeros(1, np.float32), 2, 2), 2)
