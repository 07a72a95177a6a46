"""Checking an export's graph against the layout of its task, as Ultralytics exports them.

- input: one image, float32 [B, 3, S, S] (ONNX export) or uint8 [B, S, S, 3] (normalization
  baked in), S a multiple of 32; float32 [B, S, S, 3] (a TFLite conversion) is given a
  Transpose in front, so it is served as [B, 3, S, S] like the ONNX export.
- detect: `output0` [B, 4 + nc, A]; pose: [B, 4 + 1 + 3K, A]; segment: [B, 4 + nc + M, A]
  and the prototypes [B, M, S/4, S/4] (TFLite: [B, S/4, S/4, M], given a Transpose after),
  where A = Σ (S/s)² over the strides 8, 16 and 32. Everything float32.

Output shapes are read from one ONNX Runtime run at batch 1 (converters leave some
undeclared), then declared in the graph.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from gpu_host.models.add.errors import AddError
from gpu_host.models.user_models import PROTO_STRIDE, YOLOV8_STRIDES, Task

MAX_IR_VERSION = 10
MAX_OPSET = 21
"""What the local Triton's ONNX Runtime (1.20, in .venv-triton) reads; newer exports need
`opset=17` (or at most 21) in `yolo export`."""
COCO_CLASSES = 80


@dataclass(frozen=True, slots=True)
class ExportLayout:
    """What the checks found: enough to write the `user_models.json` entry."""

    task: Task
    input_name: str
    size: int
    uint8_input: bool
    fixed_batch: bool
    """The graph's batch dimension is a fixed 1 (else it is already symbolic)."""
    output_name: str
    channels: int
    anchors: int
    classes: int
    num_keypoints: int = 17
    protos_name: str | None = None
    num_masks: int = 32

    def describe(self) -> str:
        pixels = (
            f"uint8 [{self.size}, {self.size}, 3]"
            if self.uint8_input
            else (f"float32 [3, {self.size}, {self.size}]")
        )
        extra = {
            "detect": _count(self.classes, "class", "classes"),
            "segment": f"{_count(self.classes, 'class', 'classes')}, "
            f"{self.num_masks} prototype masks",
            "pose": f"{self.num_keypoints} keypoints",
        }[self.task]
        return f"{self.task}, input {self.input_name} {pixels}, {self.anchors} anchors, {extra}"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def anchors_for(size: int) -> int:
    return sum((size // stride) ** 2 for stride in YOLOV8_STRIDES)


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def sample_input(layout: ExportLayout, batch: int, seed: int) -> npt.NDArray[Any]:
    """Random pixels in the graph's input format: every weight gets exercised."""
    rng = np.random.default_rng(seed)
    s = layout.size
    if layout.uint8_input:
        return rng.integers(0, 256, size=(batch, s, s, 3), dtype=np.uint8)
    return rng.random((batch, 3, s, s), dtype=np.float32)


def check_graph(
    model: onnx.ModelProto, task: Task, size: int | None = None
) -> tuple[onnx.ModelProto, ExportLayout]:
    """The graph as it will be served (spatial size pinned, NHWC made NCHW) and its layout;
    `AddError` naming the first thing that does not fit. `size`: the export's `imgsz`,
    needed only when the graph leaves height and width free (`dynamic=True`)."""
    _check_model(model)
    model = copy.deepcopy(model)
    image, fixed_batch, size, uint8_input = _check_input(model, size)
    outputs = _run_once(model, image.name, uint8_input, size)
    if task == "segment":
        layout = _segment(model, outputs, image.name, size, uint8_input, fixed_batch)
    else:
        layout = _single(task, outputs, image.name, size, uint8_input, fixed_batch)
    _declare_outputs(model, outputs, fixed_batch)
    if layout.protos_name is not None and layout.protos_name not in outputs:
        _protos_to_nchw(model, layout)  # the name it gets is the layout's
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:  # our own edits: a bug, but say so plainly
        raise AddError(f"the adapted graph does not check: {exc}") from exc
    return model, layout


def _check_model(model: onnx.ModelProto) -> None:
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise AddError(f"the ONNX checker rejects the graph: {exc}") from exc
    if model.ir_version > MAX_IR_VERSION:
        raise AddError(
            f"ONNX IR version {model.ir_version}: the serving ONNX Runtime reads up to "
            f"{MAX_IR_VERSION}; export with opset=17"
        )
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset > MAX_OPSET:
        raise AddError(f"opset {opset}: the serving ONNX Runtime reads up to {MAX_OPSET}")


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    """A tensor's declared dims: an int, a symbolic name, or None (unknown)."""
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
        for d in value.type.tensor_type.shape.dim
    ]


def _check_input(
    model: onnx.ModelProto, size: int | None
) -> tuple[onnx.ValueInfoProto, bool, int, bool]:
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise AddError(f"expected one image input, the graph has {len(inputs)}: {names}")
    (image,) = inputs
    dtype = image.type.tensor_type.elem_type
    dims = _dims(image)
    if dtype not in (TensorProto.FLOAT, TensorProto.UINT8):
        name = TensorProto.DataType.Name(dtype)
        raise AddError(f"input {image.name!r} is {name}: expected float32 or uint8")
    if len(dims) != 4:
        raise AddError(
            f"input {image.name!r} has shape {dims}: expected 4 dimensions, a batch first "
            "([B, 3, S, S] or [B, S, S, 3]); a graph without a batch dimension cannot be "
            "served by Triton's batcher — export it again from Ultralytics"
        )
    batch, *rest = dims
    if isinstance(batch, int) and batch != 1:
        raise AddError(f"input {image.name!r} has a fixed batch of {batch}: export batch 1")
    nhwc = rest[2] == 3 and rest[0] != 3
    if dtype == TensorProto.UINT8 and not nhwc:
        raise AddError(f"input {image.name!r} is uint8 {dims}: expected [B, S, S, 3]")
    if not nhwc and rest[0] != 3:
        raise AddError(f"input {image.name!r} has shape {dims}: expected [B, 3, S, S]")
    height, width = (rest[0], rest[1]) if nhwc else (rest[1], rest[2])
    pinned = [d for d in (height, width) if isinstance(d, int)]
    if pinned:
        if len(pinned) == 1 or height != width:
            raise AddError(f"input {image.name!r} is {height}×{width}: expected square S×S")
        if size is not None and size != pinned[0]:
            raise AddError(f"--size {size} but the graph's input is {pinned[0]}×{pinned[0]}")
        size = pinned[0]
    elif size is None:
        raise AddError(
            f"input {image.name!r} leaves its size free ({dims}): give the export's imgsz "
            "with --size"
        )
    if size <= 0 or size % 32:
        raise AddError(f"input size {size} is not a multiple of 32 (YOLO's largest stride)")
    shape = image.type.tensor_type.shape.dim
    for index in (1, 2) if nhwc else (2, 3):
        shape[index].Clear()
        shape[index].dim_value = size
    uint8_input = dtype == TensorProto.UINT8
    if nhwc and not uint8_input:
        image = _input_to_nchw(model, image)
    return image, not isinstance(batch, str), size, uint8_input


def _input_to_nchw(model: onnx.ModelProto, image: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    """A new float32 [B, 3, S, S] input, transposed into the graph's NHWC one."""
    graph = model.graph
    taken = {v.name for v in (*graph.input, *graph.output, *graph.value_info)} | {
        o for n in graph.node for o in n.output
    }
    name = "images" if "images" not in taken else f"{image.name}_nchw"
    b, s = _dims(image)[0], _dims(image)[1]
    nchw = helper.make_tensor_value_info(name, TensorProto.FLOAT, [b, 3, s, s])
    graph.node.insert(0, helper.make_node("Transpose", [name], [image.name], perm=[0, 2, 3, 1]))
    graph.input.remove(image)
    graph.input.insert(0, nchw)
    return nchw


def _run_once(
    model: onnx.ModelProto, input_name: str, uint8_input: bool, size: int
) -> dict[str, npt.NDArray[Any]]:
    probe = ExportLayout(
        task="detect",
        input_name=input_name,
        size=size,
        uint8_input=uint8_input,
        fixed_batch=True,
        output_name="",
        channels=0,
        anchors=0,
        classes=0,
    )
    try:
        sess = session(model)
        names = [o.name for o in sess.get_outputs()]
        values = sess.run(names, {input_name: sample_input(probe, 1, seed=0)})
    except Exception as exc:  # ONNX Runtime raises its own classes for every failure
        raise AddError(f"ONNX Runtime cannot run the graph on one image: {exc}") from exc
    return dict(zip(names, values, strict=True))


def _check_float(outputs: dict[str, npt.NDArray[Any]]) -> None:
    for name, value in outputs.items():
        if value.dtype != np.float32:
            raise AddError(f"output {name!r} is {value.dtype}: expected float32")


def _predictions(name: str, value: npt.NDArray[Any], task: Task, size: int) -> tuple[int, int]:
    """The head output [1, channels, anchors] → (channels, anchors), checked."""
    anchors = anchors_for(size)
    want = {
        "detect": "[B, 4 + classes, anchors]",
        "segment": "[B, 4 + classes + 32, anchors]",
        "pose": "[B, 4 + 1 + 3·keypoints, anchors]",
    }[task]
    if value.ndim != 3 or value.shape[0] != 1:
        raise AddError(f"output {name!r} has shape {list(value.shape)}: a {task} export has {want}")
    channels = int(value.shape[1])
    if value.shape[2] != anchors:
        hint = " (transposed?)" if channels == anchors else ""
        raise AddError(
            f"output {name!r} has shape {list(value.shape)}: a {task} export at {size} px has "
            f"{want} with {anchors} anchors{hint}"
        )
    return channels, anchors


def _single(
    task: Task,
    outputs: dict[str, npt.NDArray[Any]],
    input_name: str,
    size: int,
    uint8_input: bool,
    fixed_batch: bool,
) -> ExportLayout:
    if len(outputs) != 1:
        raise AddError(
            f"a {task} export has one output, the graph has {len(outputs)}: {sorted(outputs)}"
            + (" (a segment export? use --task segment)" if len(outputs) == 2 else "")
        )
    _check_float(outputs)
    ((name, value),) = outputs.items()
    channels, anchors = _predictions(name, value, task, size)
    base = ExportLayout(
        task=task,
        input_name=input_name,
        size=size,
        uint8_input=uint8_input,
        fixed_batch=fixed_batch,
        output_name=name,
        channels=channels,
        anchors=anchors,
        classes=1,
    )
    if task == "detect":
        if channels < 5:
            raise AddError(f"output {name!r} has {channels} rows: a detect export has 4 + classes")
        return replace(base, classes=channels - 4)
    keypoints, left = divmod(channels - 5, 3)
    if channels < 8 or left:
        raise AddError(
            f"output {name!r} has {channels} rows: a pose export has 4 + 1 + 3·keypoints"
        )
    return replace(base, num_keypoints=keypoints)


def _segment(
    model: onnx.ModelProto,
    outputs: dict[str, npt.NDArray[Any]],
    input_name: str,
    size: int,
    uint8_input: bool,
    fixed_batch: bool,
) -> ExportLayout:
    if len(outputs) != 2:
        raise AddError(
            f"a segment export has two outputs (predictions and prototype masks), the graph "
            f"has {len(outputs)}: {sorted(outputs)}"
        )
    _check_float(outputs)
    by_rank = {v.ndim: n for n, v in outputs.items()}
    if sorted(by_rank) != [3, 4]:
        shapes = {n: list(v.shape) for n, v in outputs.items()}
        raise AddError(
            f"outputs {shapes}: a segment export has [B, 4 + classes + 32, anchors] and "
            f"[B, 32, {size // PROTO_STRIDE}, {size // PROTO_STRIDE}]"
        )
    name, protos = by_rank[3], by_rank[4]
    channels, anchors = _predictions(name, outputs[name], "segment", size)
    side = size // PROTO_STRIDE
    shape = outputs[protos].shape
    if shape[0] == 1 and shape[2:] == (side, side):
        masks, served_protos = int(shape[1]), protos
    elif shape[0] == 1 and shape[1:3] == (side, side):  # NHWC, from TFLite
        masks, served_protos = int(shape[3]), _free_name(model, f"{protos}_nchw")
    else:
        raise AddError(
            f"output {protos!r} has shape {list(shape)}: a segment export's prototype masks "
            f"at {size} px are [B, M, {side}, {side}]"
        )
    classes = channels - 4 - masks
    if classes < 1:
        raise AddError(
            f"output {name!r} has {channels} rows: a segment export with {masks} prototype "
            f"masks has 4 + classes + {masks}"
        )
    return ExportLayout(
        task="segment",
        input_name=input_name,
        size=size,
        uint8_input=uint8_input,
        fixed_batch=fixed_batch,
        output_name=name,
        channels=channels,
        anchors=anchors,
        classes=classes,
        protos_name=served_protos,
        num_masks=masks,
    )


def _free_name(model: onnx.ModelProto, name: str) -> str:
    taken = {o for n in model.graph.node for o in n.output} | {i.name for i in model.graph.input}
    while name in taken:
        name += "_"
    return name


def _declare_outputs(
    model: onnx.ModelProto, outputs: dict[str, npt.NDArray[Any]], fixed_batch: bool
) -> None:
    """Declare what the run found (converters leave some outputs' shapes unknown)."""
    for declared in model.graph.output:
        value = outputs[declared.name]
        batch: int | str = 1 if fixed_batch else "N"
        declared.CopyFrom(
            helper.make_tensor_value_info(
                declared.name, TensorProto.FLOAT, [batch, *(int(d) for d in value.shape[1:])]
            )
        )


def _protos_to_nchw(model: onnx.ModelProto, layout: ExportLayout) -> None:
    """TFLite's NHWC prototypes [B, P, P, M] → a new output [B, M, P, P]."""
    assert layout.protos_name is not None
    graph = model.graph
    (nhwc,) = [
        o for o in graph.output if _dims(o)[1:3] == [layout.size // 4] * 2 and len(_dims(o)) == 4
    ]
    b, p, _, m = _dims(nhwc)
    graph.node.append(
        helper.make_node("Transpose", [nhwc.name], [layout.protos_name], perm=[0, 3, 1, 2])
    )
    index = list(graph.output).index(nhwc)
    graph.output.remove(nhwc)
    graph.output.insert(
        index, helper.make_tensor_value_info(layout.protos_name, TensorProto.FLOAT, [b, m, p, p])
    )
