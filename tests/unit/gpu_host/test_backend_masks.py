"""Masks on the socket: run lengths round-trip every bitmap a producer may send, and a result
without masks is what it was before masks existed (the shared cases are in tests/contracts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpu_host.backend.masks import decode_mask, encode_mask, run_lengths
from gpu_host.backend.protocol import FrameHeader, result_message
from gpu_host.vision.types import MASK_MAX_SIDE, Detection, Mask, ModelOutput


@pytest.mark.parametrize(
    ("h", "w", "density", "seed"),
    [
        (1, 1, 0.5, 0),
        (1, 1, 1.0, 0),
        (48, 64, 0.5, 1),
        (60, 40, 0.9, 2),
        (MASK_MAX_SIDE, MASK_MAX_SIDE, 0.1, 3),
        (MASK_MAX_SIDE, 1, 0.5, 4),
    ],
)
def test_run_lengths_round_trip(h: int, w: int, density: float, seed: int) -> None:
    bitmap = np.random.default_rng(seed).random((h, w)) < density
    mask = Mask("segment", "person", 0.5, (0.1, 0.2, 0.3, 0.4), bitmap)
    wire = json.loads(json.dumps(encode_mask(mask)))
    assert sum(wire["rle"]) == h * w
    assert wire["size"] == [w, h]
    assert np.array_equal(decode_mask(wire).bitmap, bitmap)


@pytest.mark.parametrize(
    ("rows", "runs"),
    [
        ([[False, False, True]], [2, 1]),
        ([[True, False], [False, False]], [0, 1, 3]),
        ([[True], [True]], [0, 2]),
    ],
)
def test_runs_alternate_outside_first(rows: list[list[bool]], runs: list[int]) -> None:
    assert run_lengths(np.array(rows, dtype=np.bool_)) == runs


def _result(*outputs: ModelOutput) -> str:
    message = result_message(
        header=FrameHeader(frame_id=1, capture_us=2), outputs=outputs, timing_ms={}, dropped=0
    )
    return json.dumps(message, separators=(",", ":"))


def test_a_result_without_masks_has_no_masks_field() -> None:
    detection = Detection("detect", "person", 0.9, (0.1, 0.1, 0.5, 0.9))
    text = _result(ModelOutput(detections=(detection,)), ModelOutput())
    assert '"masks"' not in text
    assert text.endswith('"dropped":0,"late":[]}')


def test_a_result_carries_every_output_s_masks_in_order() -> None:
    first = Mask("segment", "person", 1.0, (0, 0, 1, 1), np.ones((2, 3), np.bool_))
    second = Mask("nails", "nail", 0.7, (0.2, 0.2, 0.4, 0.5), np.eye(2, dtype=np.bool_))
    sent = json.loads(_result(ModelOutput(masks=(first,)), ModelOutput(masks=(second,))))
    assert [(m["model"], m["rle"]) for m in sent["masks"]] == [
        ("segment", [0, 6]),
        ("nails", [0, 1, 2, 1]),
    ]
