"""MoveNet's decoding head, rebuilt so that it takes a batch.

The TF graph decodes one image: it gathers with indices that start with a literal batch 0.
This replaces everything after the four heads (keypoint heatmaps, weighted centre, centre
regression, keypoint offsets) with the same arithmetic in batch-aware ops (ArgMax over a
flattened grid, GatherND with batch_dims=1, GatherElements), reusing the graph's own
constants. The output keeps its name and layout: [N, 1, 17, 3] of (y, x, score).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gpu_host.models.convert.graph import prune

GRID = 48
KEYPOINTS = 17
CELLS = GRID * GRID


def _input_of(graph: onnx.GraphProto, node_name: str, index: int) -> str:
    for node in graph.node:
        if node.name == node_name:
            return str(node.input[index])
    raise ValueError(f"MoveNet graph has no node {node_name!r}; has the source changed?")


def batched_head(model: onnx.ModelProto) -> onnx.ModelProto:
    out = copy.deepcopy(model)
    graph = out.graph
    tf = "StatefulPartitionedCall"
    heat = _input_of(graph, f"{tf}/truediv_3", 0)  # sigmoid keypoint heatmaps, NHWC
    centre = _input_of(graph, f"{tf}/Reshape_2", 0)  # sigmoid centre × centre weighting
    regress = _input_of(graph, f"{tf}/GatherNd", 0)  # keypoint offsets from the centre
    offset = _input_of(graph, f"{tf}/GatherNd_1", 0)  # sub-cell keypoint offsets
    grid_y = _input_of(graph, f"{tf}/sub_5", 0)  # [48, 48, 1] row index
    grid_x = _input_of(graph, f"{tf}/sub_6", 0)  # [48, 48, 1] column index
    bias = _input_of(graph, f"{tf}/add_5", 1)  # the distance bias, 1.8
    scale = _input_of(graph, f"{tf}/mul_2", 1)  # 1 / 48 for y and x
    result = graph.output[0].name

    def const(name: str, value: list[int] | int) -> str:
        graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), name))
        return name

    p = "pose_head/"
    flat_c = const(p + "flat_centre", [0, CELLS])
    flat_r = const(p + "flat_regress", [0, CELLS, 2 * KEYPOINTS])
    kp_pairs = const(p + "keypoint_pairs", [0, KEYPOINTS, 2])
    flat_h = const(p + "flat_heat", [0, CELLS, KEYPOINTS])
    flat_o = const(p + "flat_offset", [0, CELLS, KEYPOINTS, 2])
    width = const(p + "grid", GRID)
    ax2 = const(p + "axes_2", [2])
    ax1 = const(p + "axes_1", [1])
    ax3 = const(p + "axes_3", [3])

    def n(op: str, inputs: list[str], output: str, **attrs: Any) -> onnx.NodeProto:
        return helper.make_node(op, inputs, [p + output], name=p + output, **attrs)

    def row_col(index: str, tag: str) -> list[onnx.NodeProto]:
        return [
            n("Div", [index, width], f"{tag}_row"),
            n("Mul", [p + f"{tag}_row", width], f"{tag}_row_cells"),
            n("Sub", [index, p + f"{tag}_row_cells"], f"{tag}_col"),
            n("Cast", [p + f"{tag}_row"], f"{tag}_y", to=TensorProto.FLOAT),
            n("Cast", [p + f"{tag}_col"], f"{tag}_x", to=TensorProto.FLOAT),
        ]

    nodes = [
        # the person: the best weighted centre, [N, 1]
        n("Reshape", [centre, flat_c], "centre_flat"),
        n("ArgMax", [p + "centre_flat"], "centre_index", axis=1, keepdims=1),
        *row_col(p + "centre_index", "centre"),
        # regressed keypoint positions around that centre, [N, 17, 1] each
        n("Reshape", [regress, flat_r], "regress_flat"),
        n("GatherND", [p + "regress_flat", p + "centre_index"], "regress_at", batch_dims=1),
        n("Reshape", [p + "regress_at", kp_pairs], "regress_pairs"),
        helper.make_node(
            "Split",
            [p + "regress_pairs"],
            [p + "reg_y", p + "reg_x"],
            axis=2,
            name=p + "regress_split",
        ),
        # lift the centre to [N, 1, 1] so that it adds per item, not across the batch
        n("Unsqueeze", [p + "centre_y", ax2], "centre_y3"),  # [N, 1, 1]
        n("Unsqueeze", [p + "centre_x", ax2], "centre_x3"),
        n("Add", [p + "centre_y3", p + "reg_y"], "kp_y"),
        n("Add", [p + "centre_x3", p + "reg_x"], "kp_x"),
        # keypoint heatmaps weighted by 1 / (distance to the regressed position + bias)
        n("Transpose", [p + "kp_y"], "kp_y_t", perm=[0, 2, 1]),
        n("Transpose", [p + "kp_x"], "kp_x_t", perm=[0, 2, 1]),
        n("Unsqueeze", [p + "kp_y_t", ax1], "kp_y4"),  # [N, 1, 1, 17]
        n("Unsqueeze", [p + "kp_x_t", ax1], "kp_x4"),
        n("Sub", [grid_y, p + "kp_y4"], "dy"),
        n("Sub", [grid_x, p + "kp_x4"], "dx"),
        n("Mul", [p + "dy", p + "dy"], "dy2"),
        n("Mul", [p + "dx", p + "dx"], "dx2"),
        n("Add", [p + "dy2", p + "dx2"], "d2"),
        n("Sqrt", [p + "d2"], "dist"),
        n("Add", [p + "dist", bias], "dist_biased"),
        n("Div", [heat, p + "dist_biased"], "weighted"),
        n("Reshape", [p + "weighted", flat_h], "weighted_flat"),
        n("ArgMax", [p + "weighted_flat"], "kp_index", axis=1, keepdims=1),  # [N, 1, 17]
        *row_col(p + "kp_index", "kp_cell"),
        # score: the unweighted heatmap at the chosen cell
        n("Reshape", [heat, flat_h], "heat_flat"),
        n("GatherElements", [p + "heat_flat", p + "kp_index"], "score", axis=1),
        n("Unsqueeze", [p + "score", ax3], "score4"),  # [N, 1, 17, 1]
        # sub-cell offset of keypoint k at its own cell
        n("Reshape", [offset, flat_o], "offset_flat"),
        n("Unsqueeze", [p + "kp_index", ax3], "kp_index4"),
        n("Concat", [p + "kp_index4", p + "kp_index4"], "kp_index_pairs", axis=3),
        n("GatherElements", [p + "offset_flat", p + "kp_index_pairs"], "offset_at", axis=1),
        helper.make_node(
            "Split", [p + "offset_at"], [p + "off_y", p + "off_x"], axis=3, name=p + "offset_split"
        ),
        n("Unsqueeze", [p + "kp_cell_y", ax3], "cell_y4"),
        n("Unsqueeze", [p + "kp_cell_x", ax3], "cell_x4"),
        n("Add", [p + "cell_y4", p + "off_y"], "y"),
        n("Add", [p + "cell_x4", p + "off_x"], "x"),
        n("Concat", [p + "y", p + "x"], "yx", axis=3),
        n("Mul", [p + "yx", scale], "yx_scaled"),
        helper.make_node(
            "Concat", [p + "yx_scaled", p + "score4"], [result], axis=3, name=p + "result"
        ),
    ]
    kept = [node for node in graph.node if result not in node.output]
    del graph.node[:]
    graph.node.extend(kept + nodes)
    return prune(out)
