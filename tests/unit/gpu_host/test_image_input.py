"""The uint8 NHWC input prefix for ONNX image models, on a tiny synthetic graph."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from gpu_host.models.image_input import prepend_uint8_image_input, rename_outputs


def identity_model(layout: str = "NCHW") -> onnx.ModelProto:
    """float32 image in, the same tensor out (as `y:0`, a name Triton would refuse)."""
    shape: list[str | int | None] = ["N", 3, 4, 5] if layout == "NCHW" else ["N", 4, 5, 3]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y:0"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y:0", TensorProto.FLOAT, shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=8)


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs: list[np.ndarray] = session.run(None, feeds)
    return outputs


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)


MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@pytest.mark.parametrize("bgr", [False, True])
def test_nchw_prefix_normalizes_and_transposes(rgb: np.ndarray, bgr: bool) -> None:
    wrapped = prepend_uint8_image_input(
        identity_model(), input_name="image", height=4, width=5, mean=MEAN, std=STD, bgr=bgr
    )
    (out,) = run(wrapped, {"image": rgb})
    pixels = rgb[..., ::-1] if bgr else rgb
    expected = ((pixels / 255.0 - np.array(MEAN)) / np.array(STD)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_nhwc_prefix_keeps_the_layout(rgb: np.ndarray) -> None:
    wrapped = prepend_uint8_image_input(
        identity_model("NHWC"),
        input_name="image",
        height=4,
        width=5,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        layout="NHWC",
    )
    (out,) = run(wrapped, {"image": rgb})
    np.testing.assert_allclose(out, rgb / 127.5 - 1.0, atol=1e-5)


def test_wrapped_input_is_uint8_with_a_dynamic_batch() -> None:
    wrapped = prepend_uint8_image_input(
        identity_model(), input_name="image", height=4, width=5, mean=MEAN, std=STD
    )
    (value,) = wrapped.graph.input
    assert value.name == "image"
    assert value.type.tensor_type.elem_type == TensorProto.UINT8
    dims = value.type.tensor_type.shape.dim
    assert [dims[0].dim_param] + [d.dim_value for d in dims[1:]] == ["N", 4, 5, 3]
    assert wrapped.ir_version == 8, "ir_version kept, so older ONNX Runtimes load it"


def test_rename_outputs(rgb: np.ndarray) -> None:
    renamed = rename_outputs(identity_model(), {"y:0": "prob"})
    assert [o.name for o in renamed.graph.output] == ["prob"]
    x = rgb.transpose(0, 3, 1, 2).astype(np.float32)
    (out,) = run(renamed, {"x": x})
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mean": (0.5, 0.5)}, "3 values"),
        ({"std": (0.5, 0.0, 0.5)}, "non-zero"),
        ({"input_name": "y:0"}, "already names"),
        ({"model_input": "nope"}, "cannot pick the image input"),
    ],
)
def test_prefix_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "input_name": "image",
        "height": 4,
        "width": 5,
        "mean": MEAN,
        "std": STD,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        prepend_uint8_image_input(identity_model(), **args)  # type: ignore[arg-type]


def test_rename_outputs_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match=r"no graph outputs named \['z'\]"):
        rename_outputs(identity_model(), {"z": "prob"})


def test_text_detector_build_gives_the_spec_contract() -> None:
    """The zoo's text_det.onnx recipe, applied to a stand-in graph with the PP-OCR
    detector's names: uint8 `image` in, `prob` out, BGR-normalized in between."""
    from gpu_host.models.text_det import SOURCE_OUTPUT, build_text_detector

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], [SOURCE_OUTPUT])],
        "paddle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info(SOURCE_OUTPUT, TensorProto.FLOAT, ["n", 3, "h", "w"])],
    )
    source = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=8)
    built = build_text_detector(source)
    assert [i.name for i in built.graph.input] == ["image"]
    assert [o.name for o in built.graph.output] == ["prob"]
    rgb = np.zeros((1, 256, 320, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    (out,) = run(built, {"image": rgb})
    assert out.shape == (1, 3, 256, 320)
    np.testing.assert_allclose(out[0, :, 0, 0], [-1.0, -1.0, 1.0], atol=1e-6)  # B, G, R
