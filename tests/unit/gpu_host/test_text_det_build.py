"""The text detector's build: the zoo converter's uint8 prefix in front of PP-OCR's detector.

(The prefix itself is tested with the converter, tests/unit/models/test_convert.py; here is
what the text detector's spec needs from it, on a stand-in graph with the detector's names.)
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from gpu_host.models.spec import TEXT
from gpu_host.models.text_det import SOURCE_OUTPUT, build_text_detector


def paddle_like() -> onnx.ModelProto:
    """float32 NCHW `x` in, the same tensor out under the Paddle op's name."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], [SOURCE_OUTPUT])],
        "paddle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info(SOURCE_OUTPUT, TensorProto.FLOAT, ["n", 3, "h", "w"])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=8)


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    built = build_text_detector(paddle_like())
    return ort.InferenceSession(built.SerializeToString(), providers=["CPUExecutionProvider"])


def test_names_and_types_are_the_specs() -> None:
    built = build_text_detector(paddle_like())
    ((image,), (prob,)) = TEXT.inputs, TEXT.outputs
    (value,) = built.graph.input
    assert value.name == image.name
    assert value.type.tensor_type.elem_type == TensorProto.UINT8
    dims = value.type.tensor_type.shape.dim
    assert [dims[0].dim_param] + [d.dim_value for d in dims[1:]] == ["N", *image.dims]
    assert [o.name for o in built.graph.output] == [prob.name]
    assert built.ir_version == 8, "ir_version kept, so older ONNX Runtimes load it"


def test_pixels_are_bgr_normalized_to_minus_one_one(session: ort.InferenceSession) -> None:
    rgb = np.zeros((2, 256, 320, 3), np.uint8)
    rgb[0, ..., 0] = 255  # pure red
    rgb[1] = 51  # grey: (51 - 127.5) / 127.5 = -0.6
    (out,) = session.run(None, {"image": rgb})
    assert out.shape == (2, 3, 256, 320), "NCHW, batch kept"
    np.testing.assert_allclose(out[0, :, 0, 0], [-1.0, -1.0, 1.0], atol=1e-6)  # B, G, R
    np.testing.assert_allclose(out[1, :, 7, 9], [-0.6] * 3, atol=1e-6)


def test_other_sizes_are_refused(session: ort.InferenceSession) -> None:
    with pytest.raises(Exception, match="image"):
        session.run(None, {"image": np.zeros((1, 128, 320, 3), np.uint8)})
