"""Small graphs with the layouts of Ultralytics YOLOv8/YOLO11 exports, for `add`'s tests.

Random weights, but every output is known: a convolution over the whole input (so the graph
really reads the image, per item) times zero, plus a constant. So a test knows which boxes,
keypoints and masks come back wherever it runs the graph. By default the batch is fixed at
1, as Ultralytics' default export and TFLite conversions have it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 64
ANCHORS = (64 // 8) ** 2 + (64 // 16) ** 2 + (64 // 32) ** 2
PROTO_SIDE = SIZE // 4
BOX = (32.0, 32.0, 32.0, 16.0)
"""cx, cy, w, h in input pixels: x 16..48, y 24..40 of the 64×64 input; in a 128×64 frame
(letterboxed at half scale with 16 px bands) x 0.25..0.75, y 0.25..0.75."""
DETECT_LABELS = ("circle", "square")
SEGMENT_LABELS = ("nail",)
MASKS = 4
KEYPOINTS = 2
POSE_POINTS = (28.0, 20.0, 0.9, 36.0, 44.0, 0.2)
"""(x, y, visibility) × 2 in input pixels: frame (56, 8) and (72, 56) of 128×64."""

Outputs = dict[str, npt.NDArray[np.float32]]


def detect_outputs(classes: int = len(DETECT_LABELS)) -> Outputs:
    out = np.zeros((4 + classes, ANCHORS), np.float32)
    out[:4, 0] = BOX
    out[4 + min(1, classes - 1), 0] = 0.9  # a square
    return {"output0": out}


def segment_outputs() -> Outputs:
    """One nail over BOX whose mask is the left half of the prototype grid (columns < 8)."""
    out = np.zeros((4 + len(SEGMENT_LABELS) + MASKS, ANCHORS), np.float32)
    out[:5, 0] = (*BOX, 0.9)
    out[5:, 0] = (1, 0, 0, 0)
    protos = np.zeros((MASKS, PROTO_SIDE, PROTO_SIDE), np.float32)
    protos[0] = np.where(np.arange(PROTO_SIDE) < 8, 1.0, -1.0)[None, :]
    return {"output0": out, "output1": protos}


SEGMENT_BITMAP = [[True] * 4 + [False] * 4] * 4
"""BOX covers prototype columns 4..11 and rows 6..9; columns < 8 are set."""


def pose_outputs() -> Outputs:
    out = np.zeros((4 + 1 + 3 * KEYPOINTS, ANCHORS), np.float32)
    out[:5, 0] = (*BOX, 0.8)
    out[5:, 0] = POSE_POINTS
    return {"output0": out}


def yolo_graph(
    outputs: Outputs,
    *,
    fixed_batch: bool = True,
    batchable: bool = True,
    nhwc: bool = False,
    free_size: bool = False,
    seed: int = 0,
) -> onnx.ModelProto:
    """`images` float32 [1, 3, S, S] ([1, S, S, 3] with `nhwc`, as TFLite converts) → the
    known `outputs` ([1, ...] each). `batchable=False` reshapes the first output to a
    hard-coded [1, ...] through a Constant node: a graph whose batch cannot be freed.
    `free_size`: height and width left free, as `yolo export dynamic=True` leaves them."""
    rng = np.random.default_rng(seed)
    batch: int | str = 1 if fixed_batch else "batch"
    side: int | str = "height" if free_size else SIZE
    image_shape = [batch, side, side, 3] if nhwc else [batch, 3, side, side]
    nodes = []
    inits = [numpy_helper.from_array(np.zeros(1, np.float32), "zero")]
    pixels = "images"
    if nhwc:
        nodes.append(helper.make_node("Transpose", ["images"], ["nchw"], perm=[0, 3, 1, 2]))
        pixels = "nchw"
    graph_outputs = []
    for index, (name, known) in enumerate(outputs.items()):
        channels = known.shape[0]
        weights = rng.normal(size=(channels, 3, SIZE, SIZE)).astype(np.float32)
        inits += [
            numpy_helper.from_array(weights, f"{name}_w"),
            numpy_helper.from_array(known[None], f"{name}_known"),
        ]
        features = f"{name}_features"  # [B, channels, 1, 1]
        nodes.append(helper.make_node("Conv", [pixels, f"{name}_w"], [features]))
        if known.ndim == 2:
            inits.append(numpy_helper.from_array(np.array([3], np.int64), f"{name}_axis"))
            nodes.append(helper.make_node("Squeeze", [features, f"{name}_axis"], [f"{name}_sq"]))
            features = f"{name}_sq"
        nodes.append(helper.make_node("Mul", [features, "zero"], [f"{name}_nothing"]))
        result = name if batchable or index else f"{name}_unshaped"
        nodes.append(helper.make_node("Add", [f"{name}_nothing", f"{name}_known"], [result]))
        if not (batchable or index):
            target = np.array([1, *known.shape], np.int64)
            nodes.append(
                helper.make_node(
                    "Constant", [], [f"{name}_shape"], value=numpy_helper.from_array(target)
                )
            )
            nodes.append(helper.make_node("Reshape", [result, f"{name}_shape"], [name]))
        graph_outputs.append(
            helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, *known.shape])
        )
    graph = helper.make_graph(
        nodes,
        "yolo_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, image_shape)],
        graph_outputs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what the Triton venv's ONNX Runtime reads
    onnx.checker.check_model(model)
    return model


def unbatched_image_graph() -> onnx.ModelProto:
    """A graph whose image input has no batch dimension: [3, S, S]."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["output0"], keepdims=1)],
        "no_batch",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
