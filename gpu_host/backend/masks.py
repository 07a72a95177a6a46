"""A `Mask` on the socket: run lengths of its bitmap, row-major (protocol.json `result.masks`).

`{"model", "label", "score", "box": [x1, y1, x2, y2], "size": [w, h], "rle": [n0, n1, ...]}`:
`rle` alternates runs of cells outside and inside the thing, starting with outside (so a first
count of 0 means the top-left cell is inside), reading the bitmap row by row from its top row;
the counts sum to w × h. Chosen over polygons and a 1-bit PNG by `bench/masks.py` (exact,
the cheapest to encode and to draw, and small enough: docs/models.md "Masks on the socket").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gpu_host.vision.types import MASK_MAX_SIDE, Box, Mask


def run_lengths(bitmap: np.ndarray[Any, np.dtype[np.bool_]]) -> list[int]:
    """Alternating outside/inside run lengths of `bitmap` read row-major, outside first."""
    flat = bitmap.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(bounds).tolist()
    return [0, *counts] if flat[0] else counts


def encode_mask(mask: Mask) -> dict[str, Any]:
    """The wire form of `mask`; score and box rounded to 1e-4 like every other result."""
    h, w = mask.bitmap.shape
    return {
        "model": mask.model,
        "label": mask.label,
        "score": round(float(mask.score), 4),
        "box": [round(float(v), 4) for v in mask.box],
        "size": [w, h],
        "rle": run_lengths(mask.bitmap),
    }


def _int(value: Any, what: str) -> int:
    # bool is an int to Python but not a count to anyone reading the JSON.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return value


def _number(value: Any, what: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not np.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {value!r}")
    return value


def decode_mask(wire: Mapping[str, Any]) -> Mask:
    """The inverse of `encode_mask`; `ValueError` saying what is wrong with a bad one."""
    if not isinstance(wire, Mapping):
        raise ValueError(f"a mask must be an object, got {type(wire).__name__}")
    size = wire.get("size")
    if not isinstance(size, list) or len(size) != 2:
        raise ValueError(f"size must be [w, h], got {size!r}")
    w, h = (_int(v, "size") for v in size)
    if not (1 <= w <= MASK_MAX_SIDE and 1 <= h <= MASK_MAX_SIDE):
        raise ValueError(f"size {w}x{h} is outside 1..{MASK_MAX_SIDE} per side")
    box = wire.get("box")
    if not isinstance(box, list) or len(box) != 4:
        raise ValueError(f"box must be [x1, y1, x2, y2], got {box!r}")
    x1, y1, x2, y2 = (_number(v, "box") for v in box)
    rle = wire.get("rle")
    if not isinstance(rle, list):
        raise ValueError("rle must be a list of run lengths")
    counts = [_int(v, "rle") for v in rle]
    if any(c < 0 for c in counts):
        raise ValueError("rle counts must not be negative")
    if sum(counts) != w * h:
        raise ValueError(f"rle counts sum to {sum(counts)}, not {w}x{h} = {w * h}")
    # Runs alternate outside, inside, outside, ...: odd-indexed runs are the thing.
    values = np.arange(len(counts)) % 2 == 1
    bitmap = np.repeat(values, counts).reshape(h, w)
    decoded_box: Box = (x1, y1, x2, y2)
    return Mask(
        model=_string(wire.get("model"), "model"),
        label=_string(wire.get("label"), "label"),
        score=_number(wire.get("score"), "score"),
        box=decoded_box,
        bitmap=bitmap,
    )
