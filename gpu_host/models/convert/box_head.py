"""NanoDet's box decoding and top-k inside the graph: `[N, K, 6]` instead of six grids.

The raw head is, for every cell of three grids, 80 class scores and 4 × 11 distance logits:
1.76 MB of float32 per frame, which the backend had to receive and decode. With this edit the
graph decodes the boxes (softmax expectation × stride from the cell centre, as
`gpu_host.vision.detect.grid_candidates` does in NumPy) and keeps the K best (cell, class)
pairs: `detections` `[N, K, 6]` = x1, y1, x2, y2 (input pixels), score, class — 24 KB at
K = 1000, batch-first and fixed-size, so Triton's batcher splits it back per request (ONNX
`NonMaxSuppression`'s `[M, 3]` has no batch dimension). Suppression stays in the backend,
on at most K candidates.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUTPUT = "detections"
PREFIX = "box_head"


def cell_centres(size: int, strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(A, 2) x, y centres of every cell of every grid (row-major, grids in `strides` order)
    in input pixels, and (A, 1) each cell's stride. NanoDet-m measures from the centre."""
    centres, cell_strides = [], []
    for stride in strides:
        grid = size // stride
        ys, xs = np.mgrid[0:grid, 0:grid]
        xy = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1).astype(np.float32) * stride
        centres.append(xy)
        cell_strides.append(np.full((grid * grid, 1), stride, np.float32))
    return np.concatenate(centres), np.concatenate(cell_strides)


def add_box_head(
    model: onnx.ModelProto,
    *,
    size: int,
    strides: Sequence[int],
    reg_max: int,
    classes: int,
    top_k: int,
) -> onnx.ModelProto:
    """Replace the outputs `cls_{s}` [N, cells, classes] and `reg_{s}` [N, cells,
    4·(reg_max+1)] by `detections` [N, top_k, 6], sorted by score (best first)."""
    out = copy.deepcopy(model)
    graph = out.graph
    names = {o.name for o in graph.output}
    wanted = [f"{kind}_{s}" for s in strides for kind in ("cls", "reg")]
    if set(wanted) != names:
        raise ValueError(f"expected outputs {sorted(wanted)}, found {sorted(names)}")
    centres, cell_strides = cell_centres(size, strides)
    cells = len(centres)
    bins = reg_max + 1
    if top_k > cells * classes:
        raise ValueError(f"top_k {top_k} > {cells} cells × {classes} classes")

    def const(name: str, value: np.ndarray) -> str:
        full = f"{PREFIX}/{name}"
        graph.initializer.append(numpy_helper.from_array(value, full))
        return full

    def t(name: str) -> str:
        return f"{PREFIX}/{name}"

    i64 = np.int64
    nodes = [
        helper.make_node("Concat", [f"cls_{s}" for s in strides], [t("cls")], axis=1),
        helper.make_node("Concat", [f"reg_{s}" for s in strides], [t("reg")], axis=1),
        # Distances: the expectation of each side's distribution over 0..reg_max cells.
        helper.make_node(
            "Reshape", [t("reg"), const("reg_shape", np.array([0, cells, 4, bins], i64))],
            [t("reg4")],
        ),
        helper.make_node("Softmax", [t("reg4")], [t("prob")], axis=-1),
        helper.make_node(
            "MatMul", [t("prob"), const("bins", np.arange(bins, dtype=np.float32)[:, None])],
            [t("expect")],
        ),
        helper.make_node(
            "Reshape", [t("expect"), const("dist_shape", np.array([0, cells, 4], i64))],
            [t("cells_dist")],
        ),
        helper.make_node("Mul", [t("cells_dist"), const("strides", cell_strides)], [t("dist")]),
        helper.make_node(
            "Split", [t("dist"), const("split", np.array([2, 2], i64))], [t("lt"), t("rb")],
            axis=2,
        ),
        helper.make_node("Sub", [const("centres", centres), t("lt")], [t("x1y1")]),
        helper.make_node("Add", [t("centres"), t("rb")], [t("x2y2")]),
        helper.make_node("Concat", [t("x1y1"), t("x2y2")], [t("boxes")], axis=2),
        # The best (cell, class) pairs over all grids, flattened cell-major.
        helper.make_node(
            "Reshape", [t("cls"), const("flat_shape", np.array([0, -1], i64))], [t("flat")]
        ),
        helper.make_node(
            "TopK", [t("flat"), const("k", np.array([top_k], i64))], [t("score"), t("index")],
            axis=1, largest=1, sorted=1,
        ),
        helper.make_node("Div", [t("index"), const("classes", np.array(classes, i64))],
                         [t("cell")]),
        helper.make_node("Mod", [t("index"), t("classes")], [t("class")]),
        helper.make_node(
            "Unsqueeze", [t("cell"), const("last", np.array([2], i64))], [t("cell3")]
        ),
        helper.make_node(
            "Expand", [t("cell3"), const("by4", np.array([1, 1, 4], i64))], [t("cell4")]
        ),
        helper.make_node("GatherElements", [t("boxes"), t("cell4")], [t("picked")], axis=1),
        helper.make_node("Unsqueeze", [t("score"), t("last")], [t("score3")]),
        helper.make_node("Cast", [t("class")], [t("class_f")], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", [t("class_f"), t("last")], [t("class3")]),
        helper.make_node("Concat", [t("picked"), t("score3"), t("class3")], [OUTPUT], axis=2),
    ]  # fmt: skip
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", top_k, 6]))
    return out
