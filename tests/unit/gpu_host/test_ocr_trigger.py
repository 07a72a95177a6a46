"""The OCR trigger rule: recognize new or moved text regions, reuse the reads of the rest."""

from __future__ import annotations

import pytest

from gpu_host.backend.ocr_trigger import MATCH_IOU, Read, box_iou, plan_reads, remember
from gpu_host.vision.types import Box

SIGN: Box = (0.10, 0.10, 0.50, 0.20)
LABEL: Box = (0.60, 0.70, 0.90, 0.80)


def shifted(box: Box, dx: float) -> Box:
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def test_the_first_frame_reads_every_region() -> None:
    plan = plan_reads((), [SIGN, LABEL])
    assert plan.to_read == (0, 1)
    assert plan.known == (None, None)


def test_unchanged_regions_reuse_their_reads_with_the_current_box() -> None:
    """Given a sign read on an earlier frame, when it is found again a little to the right
    (IoU above the match threshold), then nothing is read and the read follows the box."""
    earlier = (Read(SIGN, "EXIT", 0.97),)
    moved_a_little = shifted(SIGN, 0.02)
    assert box_iou(SIGN, moved_a_little) > MATCH_IOU
    plan = plan_reads(earlier, [moved_a_little])
    assert plan.to_read == ()
    assert remember(plan, {}) == (Read(moved_a_little, "EXIT", 0.97),)


def test_a_region_that_moved_is_read_again() -> None:
    earlier = (Read(SIGN, "EXIT", 0.97),)
    moved = shifted(SIGN, 0.15)  # IoU 0.45
    assert box_iou(SIGN, moved) < MATCH_IOU
    plan = plan_reads(earlier, [moved])
    assert plan.to_read == (0,)
    fresh = {0: Read(moved, "EXIT", 0.95)}
    assert remember(plan, fresh) == (Read(moved, "EXIT", 0.95),)


def test_only_the_new_region_is_read() -> None:
    earlier = (Read(SIGN, "EXIT", 0.97),)
    plan = plan_reads(earlier, [SIGN, LABEL])
    assert plan.to_read == (1,)
    reads = remember(plan, {1: Read(LABEL, "PUSH", 0.9)})
    assert reads == (Read(SIGN, "EXIT", 0.97), Read(LABEL, "PUSH", 0.9))


def test_a_client_request_reads_everything_again() -> None:
    earlier = (Read(SIGN, "EXIT", 0.97), Read(LABEL, "PUSH", 0.9))
    assert plan_reads(earlier, [SIGN, LABEL], reread=True).to_read == (0, 1)


def test_vanished_regions_are_forgotten() -> None:
    earlier = (Read(SIGN, "EXIT", 0.97), Read(LABEL, "PUSH", 0.9))
    assert remember(plan_reads(earlier, [LABEL]), {}) == (Read(LABEL, "PUSH", 0.9),)
    assert remember(plan_reads(earlier, []), {}) == ()


def test_an_illegible_read_is_remembered_too() -> None:
    """Nothing legible is still an answer: the region is not re-read every frame."""
    earlier = (Read(SIGN, "", 0.0),)
    plan = plan_reads(earlier, [SIGN])
    assert plan.to_read == ()
    assert remember(plan, {}) == (Read(SIGN, "", 0.0),)


def test_each_earlier_read_matches_one_region_best_first() -> None:
    """Two regions overlap one earlier read: the closer one takes it, the other is read."""
    earlier = (Read(SIGN, "EXIT", 0.97),)
    near, far = shifted(SIGN, 0.01), shifted(SIGN, 0.03)
    plan = plan_reads(earlier, [far, near])
    assert plan.known == (None, earlier[0])
    assert plan.to_read == (0,)


def test_reads_per_frame_are_capped_and_the_rest_wait() -> None:
    regions = [(0.0, i / 10, 0.5, i / 10 + 0.05) for i in range(5)]
    plan = plan_reads((), regions, max_reads=2)
    assert plan.to_read == (0, 1)
    reads = remember(plan, {i: Read(regions[i], f"line {i}", 0.9) for i in plan.to_read})
    assert [r.text for r in reads] == ["line 0", "line 1"]
    assert plan_reads(reads, regions, max_reads=2).to_read == (2, 3), "the rest, next frame"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (SIGN, SIGN, 1.0),
        (SIGN, LABEL, 0.0),
        ((0.0, 0.0, 0.2, 0.1), (0.1, 0.0, 0.3, 0.1), 1 / 3),
        ((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0), 0.0),
    ],
)
def test_box_iou(a: Box, b: Box, expected: float) -> None:
    assert box_iou(a, b) == pytest.approx(expected)
