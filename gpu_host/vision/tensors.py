"""Reading a model's named outputs with a clear error when one is missing or misshapen."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from gpu_host.vision.types import Tensors

Floats = npt.NDArray[np.float32]


def output(model: str, outputs: Tensors, name: str, shape: Sequence[int | None]) -> Floats:
    """`outputs[name]` as float32 of `shape` (None: any size); ValueError otherwise.

    A leading batch dimension of 1 is tolerated and dropped, so a single run's raw output
    can be passed as it is.
    """
    if name not in outputs:
        raise ValueError(f"{model}: output {name!r} missing (got {sorted(outputs)})")
    value = np.asarray(outputs[name], dtype=np.float32)
    if value.ndim == len(shape) + 1 and value.shape[0] == 1:
        value = value[0]
    fits = value.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, value.shape, strict=True)
    )
    if not fits:
        want = ", ".join("?" if s is None else str(s) for s in shape)
        raise ValueError(f"{model}: output {name!r} has shape {value.shape}, expected ({want})")
    return value
