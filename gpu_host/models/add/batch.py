"""A fixed batch of 1 made dynamic, where the graph allows it, checked with ONNX Runtime.

Ultralytics' default export and TFLite conversions fix the batch at 1. The rewrite
(`gpu_host.models.convert.graph.make_batch_dynamic`, the zoo's) frees the batch dimension of
the inputs and outputs and turns constant Reshape targets that start with 1 into "copy the
batch"; whether the graph then really takes a batch is decided numerically: a batch of 2
must run and give, item by item, what each image gives alone. A graph that fails (a Reshape
whose target is computed, a hard-coded 1 elsewhere) is served unbatched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from gpu_host.models.add.graph import ExportLayout, sample_input, session
from gpu_host.models.convert.graph import make_batch_dynamic

BATCHED_MAX = 8
"""Triton's max_batch_size for a graph that takes a batch (the user spec's default)."""
TOLERANCE = 1e-4
"""Relative and absolute: batched kernels may sum in another order."""


@dataclass(frozen=True, slots=True)
class Batching:
    model: onnx.ModelProto
    max_batch_size: int
    why: str
    """What was found, for the command's output."""


def batching(model: onnx.ModelProto, layout: ExportLayout) -> Batching:
    """The graph to serve and its Triton max_batch_size: batched if a batch of 2 checks out,
    else the graph as it was, unbatched (max_batch_size 1)."""
    candidate = make_batch_dynamic(model) if layout.fixed_batch else model
    problem = _batch_problem(candidate, layout)
    if problem is None:
        how = "made dynamic" if layout.fixed_batch else "already dynamic"
        return Batching(
            candidate,
            BATCHED_MAX,
            f"batch dimension {how}; a batch of 2 gives what each image gives alone: "
            f"Triton batches up to {BATCHED_MAX} requests",
        )
    return Batching(
        model,
        1,
        f"the graph does not take a batch ({problem}): served unbatched (max_batch_size 1), "
        "one image per run",
    )


def _batch_problem(model: onnx.ModelProto, layout: ExportLayout) -> str | None:
    """None when a batch of 2 equals the two images run alone; else what went wrong."""
    images = sample_input(layout, 2, seed=1)
    try:
        sess = session(model)
        together = sess.run(None, {layout.input_name: images})
        alone = [sess.run(None, {layout.input_name: images[i : i + 1]}) for i in range(2)]
    except Exception as exc:  # ONNX Runtime's own classes, for shapes it cannot take
        return f"a batch of 2 fails: {str(exc).splitlines()[0][:200]}"
    for index, batched in enumerate(together):
        single = np.concatenate([a[index] for a in alone])
        if batched.shape != single.shape:
            return f"a batch of 2 gives shape {list(batched.shape)}, not {list(single.shape)}"
        if not np.allclose(batched, single, rtol=TOLERANCE, atol=TOLERANCE):
            return "a batch of 2 gives other values than the images alone"
    return None
