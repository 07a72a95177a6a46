"""The verification's pure parts: comparisons, the report, the precision decision."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_host.models.spec import BUILTIN_SPECS, Precision
from gpu_host.models.verify import (
    TOLERANCES,
    ModelReport,
    OutputCheck,
    decide_precisions,
    failure_message,
    report_lines,
)
from gpu_host.models.verify.compare import compare_output

RNG = np.random.default_rng(0)


def test_every_builtin_output_has_a_stated_tolerance() -> None:
    for spec in BUILTIN_SPECS.values():
        assert set(TOLERANCES[spec.name]) == {t.name for t in spec.outputs}
        assert all(tol.why for tol in TOLERANCES[spec.name].values())


@pytest.mark.parametrize(("shift", "passed"), [(0.0, True), (0.015, True), (0.03, False)])
def test_elementwise_output(shift: float, passed: bool) -> None:
    want = RNG.random((2, 1, 17, 3)).astype(np.float32)
    got = want.copy()
    got[1, 0, 5, 1] += shift
    (check,) = compare_output("pose", "keypoints", [{"keypoints": got}], [{"keypoints": want}])
    assert check.passed is passed
    assert check.diff == pytest.approx(shift, abs=1e-6)


def test_logits_are_compared_as_probabilities() -> None:
    want = np.array([[[-400.0], [0.0]]], np.float32)
    got = np.array([[[-390.0], [0.01]]], np.float32)
    (check,) = compare_output("face", "scores", [{"scores": got}], [{"scores": want}])
    assert check.passed


def face_outputs(boxes: np.ndarray, logits: list[float]) -> dict[str, np.ndarray]:
    return {"boxes": boxes, "scores": np.array(logits, np.float32).reshape(1, -1, 1)}


def test_face_boxes_are_compared_where_a_face_can_be() -> None:
    want = np.zeros((1, 2, 16), np.float32)
    want[0, 1] = 10_000.0  # a background anchor's wild regressor
    got = want.copy()
    got[0, 1] += 8.0  # FP16's step there: harmless, the anchor is no face
    (check,) = compare_output(
        "face", "boxes", [face_outputs(got, [5.0, -30.0])], [face_outputs(want, [5.0, -30.0])]
    )
    assert check.passed
    got[0, 0, 3] += 2.0  # the confident anchor's box moves 2 px: fails
    (check,) = compare_output(
        "face", "boxes", [face_outputs(got, [5.0, -30.0])], [face_outputs(want, [5.0, -30.0])]
    )
    assert not check.passed
    assert check.diff == pytest.approx(2.0)


def detections(rows: list[list[float]]) -> dict[str, np.ndarray]:
    return {"detections": np.array([rows], np.float32)}


def test_detections_tolerate_swapped_ranks_but_not_moved_boxes() -> None:
    want = detections([[10, 10, 50, 50, 0.9, 0], [0, 0, 5, 5, 0.101, 1], [9, 9, 9, 9, 0.1, 2]])
    swapped = detections([[10, 11, 50, 50, 0.9, 0], [9, 9, 9, 9, 0.102, 2], [0, 0, 5, 5, 0.1, 1]])
    scores, boxes = compare_output("detect", "detections", [swapped], [want])
    assert (scores.label, scores.passed) == ("detections[scores]", True)
    assert (boxes.label, boxes.passed, boxes.diff) == ("detections[boxes]", True, 1.0)
    moved = detections([[10, 20, 50, 50, 0.9, 0], [0, 0, 5, 5, 0.1, 1], [9, 9, 9, 9, 0.1, 2]])
    assert [c.passed for c in compare_output("detect", "detections", [moved], [want])] == [
        True,
        False,
    ]
    relabelled = detections([[10, 10, 50, 50, 0.9, 3], [0, 0, 5, 5, 0.1, 1], [9, 9, 9, 9, 0.1, 2]])
    _, boxes = compare_output("detect", "detections", [relabelled], [want])
    assert not boxes.passed


def test_a_wrong_shape_fails() -> None:
    (check,) = compare_output(
        "text", "prob", [{"prob": np.zeros((1, 2, 3))}], [{"prob": np.zeros((1, 3, 2))}]
    )
    assert not check.passed


def test_nan_fails() -> None:
    (check,) = compare_output(
        "text", "prob", [{"prob": np.full((1, 2), np.nan)}], [{"prob": np.zeros((1, 2))}]
    )
    assert not check.passed


def test_an_unknown_model_gets_a_relative_tolerance() -> None:
    want = np.array([[100.0, -200.0]], np.float32)
    ok = {"out": want + 1.5}
    (check,) = compare_output("mine", "out", [ok], [{"out": want}])
    assert check.limit == pytest.approx(2.001)
    assert check.passed


def report(model: str, precision: Precision | None, *diffs: float) -> ModelReport:
    checks = tuple(OutputCheck(model, f"out{i}", d, 0.1) for i, d in enumerate(diffs))
    return ModelReport(model, precision, checks)


def test_report_names_each_failing_model_and_output() -> None:
    reports = [report("face", Precision.FP16, 0.01, 0.5), report("text", Precision.FP32, 0.0)]
    lines = report_lines(reports)
    assert lines[1].split()[:5] == ["face", "out0", "0.01", "0.1", "pass"]
    assert lines[2].split()[:5] == ["face", "out1", "0.5", "0.1", "FAIL"]
    assert lines[-1] == "verification FAILED: model 'face': output 'out1' differs by 0.5 > 0.1"
    assert report_lines(reports[1:])[-1] == "verification passed: 1 models"
    broken = ModelReport("ocr", None, error="not ready on this Triton")
    assert failure_message(broken) == "model 'ocr': not ready on this Triton"
    assert not ModelReport("ocr", None).passed, "nothing compared is no pass"


@pytest.mark.parametrize(
    ("reports", "precisions", "fell_back", "failing"),
    [
        pytest.param(
            [report("detect", Precision.FP16, 0.0), report("text", Precision.FP32, 0.0)],
            {"detect": Precision.FP16, "text": Precision.FP32},
            (),
            (),
            id="all-hold",
        ),
        pytest.param(
            [report("detect", Precision.FP16, 0.5), report("face", Precision.FP16, 0.0)],
            {"detect": Precision.FP32, "face": Precision.FP16},
            ("detect",),
            (),
            id="off-in-fp16-falls-back",
        ),
        pytest.param(
            [ModelReport("ocr", Precision.FP16, error="inference failed: engine build")],
            {"ocr": Precision.FP32},
            ("ocr",),
            (),
            id="fp16-engine-fails-falls-back",
        ),
        pytest.param(
            [report("text", Precision.FP32, 0.5)],
            {"text": Precision.FP32},
            (),
            ("text",),
            id="off-in-fp32-is-failing",
        ),
        pytest.param(
            [report("face", None, 0.5), report("pose", None, 0.0)],
            {},
            (),
            ("face",),
            id="no-tensorrt-nowhere-to-go",
        ),
    ],
)
def test_decide_precisions(
    reports: list[ModelReport],
    precisions: dict[str, Precision],
    fell_back: tuple[str, ...],
    failing: tuple[str, ...],
) -> None:
    decision = decide_precisions(reports)
    assert decision.precisions == precisions
    assert decision.fell_back == fell_back
    assert decision.failing == failing
    assert decision.settled is (not fell_back and not failing)
    assert decision.to_json()["precisions"] == {k: v.value for k, v in precisions.items()}
