"""From a raw conversion to the committed graph, checked with ONNX Runtime at every step."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort

from gpu_host.models.convert.graph import (
    Prefix,
    add_uint8_prefix,
    canonical_initializers,
    infer_output_shapes,
    make_batch_dynamic,
    order_outputs,
    rename_tensors,
    store_float16,
)
from gpu_host.models.convert.recipes import Recipe

log = logging.getLogger(__name__)

TOLERANCE = 1e-4


class VerificationError(RuntimeError):
    """An edited graph does not compute what the raw conversion computes."""


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def sample(prefix: Prefix, batch: int, seed: int) -> npt.NDArray[np.uint8]:
    """Random pixels: every weight and branch of the graph gets exercised."""
    rng = np.random.default_rng(seed)
    shape = (batch, prefix.height or 48, prefix.width or 160, 3)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _max_error(want: list[npt.NDArray[Any]], got: list[npt.NDArray[Any]]) -> float:
    if [w.shape for w in want] != [g.shape for g in got]:
        raise VerificationError(f"shapes {[w.shape for w in want]} != {[g.shape for g in got]}")
    return max(float(np.max(np.abs(w - g))) for w, g in zip(want, got, strict=True))


def check_same(raw: onnx.ModelProto, final: onnx.ModelProto, recipe: Recipe) -> float:
    """`final` fed uint8 pixels == `raw` fed the same pixels normalized in NumPy."""
    raw_sess, final_sess = session(raw), session(final)
    image = sample(recipe.prefix, 1, seed=0)
    feed = {raw_sess.get_inputs()[0].name: recipe.prefix.reference(image)}
    want = raw_sess.run(list(recipe.outputs), feed)
    got = final_sess.run(list(recipe.outputs.values()), {"image": image})
    err = _max_error(want, got)
    if err > TOLERANCE:
        raise VerificationError(f"{recipe.name}: differs from the raw conversion by {err}")
    return err


def check_batch(final: onnx.ModelProto, recipe: Recipe, batch: int = 4) -> float:
    """A batch of `batch` images == the same images one by one."""
    sess = session(final)
    images = sample(recipe.prefix, batch, seed=1)
    try:
        together = sess.run(None, {"image": images})
        alone = [sess.run(None, {"image": images[i : i + 1]}) for i in range(batch)]
    except ort.capi.onnxruntime_pybind11_state.Fail as exc:
        raise VerificationError(f"{recipe.name}: a batch of {batch} fails: {exc}") from exc
    stacked = [np.concatenate([a[j] for a in alone]) for j in range(len(together))]
    err = _max_error(together, stacked)
    if err > TOLERANCE:
        raise VerificationError(
            f"{recipe.name}: batch of {batch} differs from single runs by {err}"
        )
    return err


def build(raw: onnx.ModelProto, recipe: Recipe) -> tuple[onnx.ModelProto, bool]:
    """Raw conversion → the committed graph, and whether its batch dimension is dynamic."""
    if recipe.runnable is not None:
        raw = recipe.runnable(raw)
    edited = canonical_initializers(recipe.rewrite(raw) if recipe.rewrite else raw)
    named = rename_tensors(edited, recipe.outputs)
    # The converter writes its temporary path here; say where the graph really comes from.
    named.graph.doc_string = f"{recipe.package.spec}: {recipe.members[0]}"
    named = order_outputs(named, list(recipe.outputs.values()))
    named = store_float16(add_uint8_prefix(named, recipe.prefix))
    dynamic = infer_output_shapes(make_batch_dynamic(named))
    try:
        check_same(raw, dynamic, recipe)
        check_batch(dynamic, recipe)
    except VerificationError as exc:
        if recipe.finish is not None:
            raise VerificationError(f"{recipe.name}: its finishing edit needs a batch") from exc
        log.warning("%s: keeping batch 1 (%s)", recipe.name, exc)
        named = infer_output_shapes(named)
        check_same(raw, named, recipe)
        return named, False
    if recipe.finish is not None:
        # What the finished outputs mean is checked against the NumPy path it replaces by
        # the model's tests (tests/unit/vision); here: still batch-first, item by item.
        dynamic = recipe.finish(dynamic)
        check_batch(dynamic, recipe)
    return dynamic, True
