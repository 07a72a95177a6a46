"""Served outputs against the ONNX reference: the tolerance table and the pure comparisons.

A tolerance is stated per model and output, in the output's own units, with the reason for
its size. The GPU figures behind them (docs/models.md, "Precision on the GPU") were measured
through PyTorch on an H200, a proxy for TensorRT; each limit sits well above what a model
that holds showed and well below what a model that is off showed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from gpu_host.models.spec import Precision


class Kind(StrEnum):
    ABS = "abs"
    """Element by element: max |served − reference|."""
    SIGMOID = "sigmoid"
    """Element by element after a sigmoid: for raw logits, whose large magnitudes carry no
    meaning beyond "certainly not" (BlazeFace's background anchors reach −400)."""
    MASKED = "masked"
    """Element by element, only on the items (rows) another output of the reference marks
    as confident: BlazeFace's box regressors of background anchors reach ±10,000, where
    FP16's step is 8 — noise no decoded face ever shows."""
    RANKED = "ranked"
    """`detect`'s top-k rows (x1, y1, x2, y2, score, class), best first: rows with nearly
    equal scores may swap places between engines, so scores are compared in rank order (the
    k-th best score moves no more than the scores do) and each confident reference box with
    the nearest served box of its class."""


@dataclass(frozen=True, slots=True)
class Tolerance:
    limit: float
    """The largest difference that passes: absolute, in the output's units."""
    why: str
    kind: Kind = Kind.ABS
    relative: float = 0.0
    """Added to `limit` times the largest |reference| value (outputs of unknown scale)."""
    box_limit: float = 0.0
    """RANKED: the largest corner difference of a confident box, in input pixels."""
    min_score: float = 0.2
    """RANKED, MASKED: reference rows at or above this score (a probability) are the
    confident ones; below the serving thresholds (detect 0.25, face 0.5), so that every
    result a client can get is compared."""
    mask_by: str = ""
    """MASKED: the output holding each row's logit (sigmoid ≥ `min_score`: confident)."""


TOLERANCES: dict[str, dict[str, Tolerance]] = {
    "detect": {
        "detections": Tolerance(
            0.02,
            "scores are sigmoids; FP16 moved logits by 0.025, i.e. scores by < 0.01; "
            "3 px of a 416 px input keeps every box's IoU above 0.9 for objects over 60 px",
            kind=Kind.RANKED,
            box_limit=3.0,
        )
    },
    "pose": {
        "keypoints": Tolerance(
            0.02,
            "x, y, score in 0..1: 0.02 is 4 px of the 192 px input; autocast moved them 0.006, "
            "half weights 0.10 (a keypoint on the wrong joint)",
        )
    },
    "face": {
        "boxes": Tolerance(
            1.0,
            "box and landmark offsets in input pixels (128 px) of the anchors that can "
            "become a face: one pixel is under 1% of a face's size",
            kind=Kind.MASKED,
            mask_by="scores",
        ),
        "scores": Tolerance(
            0.02,
            "raw logits, compared as probabilities: FP16 moved logits up to 416 by 1.5, "
            "which no probability near the 0.5 threshold notices",
            kind=Kind.SIGMOID,
        ),
    },
    "text": {
        "prob": Tolerance(
            0.05,
            "DB probabilities binarized at 0.3: 0.05 keeps every region's outline; FP16 was "
            "off by 0.27 (autocast) to 1.0 (half weights), FP32 exact",
        )
    },
    "segment": {
        "mask": Tolerance(
            0.05,
            "person probabilities, averaged per mask cell and thresholded at 0.5: 0.05 can "
            "flip only cells already within 0.05 of the threshold, on the mask's edge; not "
            "yet measured on a GPU (served in FP32)",
        )
    },
    "ocr": {
        "probs": Tolerance(
            0.03,
            "per-step softmax, greedy CTC: 0.03 cannot flip a read character whose "
            "probability leads by more than 0.06; FP16 moved them 0.007",
        )
    },
}

DEFAULT_TOLERANCE = Tolerance(
    1e-3,
    "a model of your own: 0.001 plus 1% of the output's largest |value| (state yours in "
    "TOLERANCES when you know its units)",
    relative=0.01,
)


def tolerance_for(model: str, output: str) -> Tolerance:
    return TOLERANCES.get(model, {}).get(output, DEFAULT_TOLERANCE)


@dataclass(frozen=True, slots=True)
class OutputCheck:
    """One output of one model: the largest difference over every sample and batch."""

    model: str
    output: str
    diff: float
    limit: float
    aspect: str = ""
    """Which part of the output (RANKED: "scores" or "boxes"); empty for the whole."""

    @property
    def passed(self) -> bool:
        return self.diff <= self.limit  # NaN fails

    @property
    def label(self) -> str:
        return f"{self.output}[{self.aspect}]" if self.aspect else self.output


@dataclass(frozen=True, slots=True)
class ModelReport:
    model: str
    precision: Precision | None
    """The TensorRT precision it was served in (None: no TensorRT, e.g. the local target)."""
    checks: tuple[OutputCheck, ...] = ()
    error: str | None = None
    """Why the model could not be compared at all (not ready, inference failed)."""

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[OutputCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)


Array = npt.NDArray[Any]


Outputs = Mapping[str, Array]
"""One batch's outputs by name."""


def compare_output(
    model: str, output: str, served: Sequence[Outputs], reference: Sequence[Outputs]
) -> list[OutputCheck]:
    """Compare one output over several batches (same order in both sequences)."""
    tol = tolerance_for(model, output)
    pairs = [(got[output], want[output]) for got, want in zip(served, reference, strict=True)]
    for got, want in pairs:
        if got.shape != want.shape:
            return [OutputCheck(model, output, float("inf"), tol.limit, f"shape {got.shape}")]
    if tol.kind is Kind.RANKED:
        return _ranked(model, output, pairs, tol)
    if tol.kind is Kind.MASKED:
        masks = [
            _sigmoid(want[tol.mask_by]).reshape(want[output].shape[:2]) >= tol.min_score
            for want in reference
        ]
        pairs = [(got[mask], want[mask]) for (got, want), mask in zip(pairs, masks, strict=True)]
    scale = max(float(np.max(np.abs(want), initial=0.0)) for _, want in pairs)
    limit = tol.limit + tol.relative * scale
    transform = _sigmoid if tol.kind is Kind.SIGMOID else _float
    diff = max(_max_abs(transform(got), transform(want)) for got, want in pairs)
    return [OutputCheck(model, output, diff, limit)]


def _ranked(
    model: str, output: str, pairs: list[tuple[Array, Array]], tol: Tolerance
) -> list[OutputCheck]:
    score_diff = box_diff = 0.0
    for got_batch, want_batch in pairs:
        for got, want in zip(got_batch, want_batch, strict=True):
            got_scores = np.sort(got[:, 4].astype(np.float64))[::-1]
            want_scores = np.sort(want[:, 4].astype(np.float64))[::-1]
            score_diff = max(score_diff, _max_abs(got_scores, want_scores))
            box_diff = max(box_diff, _nearest_box_diff(got, want, tol.min_score))
    return [
        OutputCheck(model, output, score_diff, tol.limit, "scores"),
        OutputCheck(model, output, box_diff, tol.box_limit, "boxes"),
    ]


def _nearest_box_diff(got: Array, want: Array, min_score: float) -> float:
    """The worst, over confident reference rows, of the distance (max corner difference) to
    the nearest served row of the same class."""
    worst = 0.0
    for row in want[want[:, 4] >= min_score]:
        same = got[got[:, 5] == row[5]]
        if len(same) == 0:
            return float("inf")
        corners = np.abs(same[:, :4].astype(np.float64) - row[:4].astype(np.float64))
        worst = max(worst, float(np.min(np.max(corners, axis=1))))
    return worst


def _float(values: Array) -> npt.NDArray[np.float64]:
    return values.astype(np.float64)


def _sigmoid(values: Array) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.clip(values.astype(np.float64), -60.0, 60.0)))


def _max_abs(a: Array, b: Array) -> float:
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)))


def report_lines(reports: Sequence[ModelReport]) -> list[str]:
    """One line per model output: max |Δ|, tolerance, pass or FAIL; then the verdict."""
    lines = [f"{'model':<12} {'output':<20} {'max |Δ|':>12} {'tolerance':>12}  result"]
    for report in reports:
        precision = report.precision.value if report.precision else "no TensorRT"
        if report.error is not None:
            lines.append(f"{report.model:<12} {'—':<20} {'':>12} {'':>12}  FAIL ({report.error})")
            continue
        for check in report.checks:
            verdict = "pass" if check.passed else "FAIL"
            lines.append(
                f"{report.model:<12} {check.label:<20} {check.diff:>12.4g} {check.limit:>12.4g}"
                f"  {verdict} ({precision})"
            )
    failed = [r for r in reports if not r.passed]
    if failed:
        lines.append("verification FAILED: " + "; ".join(failure_message(r) for r in failed))
    else:
        lines.append(f"verification passed: {len(reports)} models")
    return lines


def failure_message(report: ModelReport) -> str:
    """Names the model and each failing output."""
    if report.error is not None:
        return f"model {report.model!r}: {report.error}"
    if not report.checks:
        return f"model {report.model!r}: no outputs compared"
    parts = [f"output {c.label!r} differs by {c.diff:.4g} > {c.limit:.4g}" for c in report.failures]
    return f"model {report.model!r}: " + ", ".join(parts)
