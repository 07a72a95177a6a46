"""When text recognition runs: on text regions that are new or moved, not on a timer.

The rule, per session and frame (pure: the session's earlier reads and this frame's regions
in, a plan out):

- The `text` detector runs on every frame the session infers; recognition does not.
- A region is *known* when an earlier read's box overlaps it with IoU >= `MATCH_IOU` (each
  earlier read matches at most one region, best overlap first). A known region keeps the
  earlier text and score, with the region's current box — a sign held still, or moving
  slowly, is read once.
- Every other region (new, or moved by more than the IoU allows) is read now, up to
  `MAX_READS_PER_FRAME`; regions past that cap are read on a later frame, since they stay
  unknown until read.
- A client's `read_text` request makes every region of the next frame unknown (read afresh).
- Regions that disappear are forgotten: if they come back, they are read again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpu_host.vision.types import Box

MATCH_IOU = 0.7
"""Overlap above which a region is the same region as an earlier read's."""

MAX_READS_PER_FRAME = 8
"""Regions recognized per frame at most: bounds a frame's work, so that OCR fits the frame
budget even on a CPU (about 35 ms a line there); the rest are read on the next frames."""


@dataclass(frozen=True, slots=True)
class Read:
    """What recognition made of one region: `text` is empty when nothing was legible."""

    box: Box
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class ReadPlan:
    regions: tuple[Box, ...]
    """This frame's text regions, in the detector's (reading) order."""
    known: tuple[Read | None, ...]
    """Per region, the earlier read it reuses; None where it is to be read (or waits)."""
    to_read: tuple[int, ...]
    """Indices of the regions to recognize now."""


def box_iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def plan_reads(
    earlier: Sequence[Read],
    regions: Sequence[Box],
    *,
    reread: bool = False,
    min_iou: float = MATCH_IOU,
    max_reads: int = MAX_READS_PER_FRAME,
) -> ReadPlan:
    """Which of `regions` reuse an `earlier` read and which are recognized now."""
    known: list[Read | None] = [None] * len(regions)
    if not reread:
        pairs = sorted(
            (
                (box_iou(read.box, region), r, e)
                for r, region in enumerate(regions)
                for e, read in enumerate(earlier)
            ),
            key=lambda pair: -pair[0],
        )
        used: set[int] = set()
        for overlap, r, e in pairs:
            if overlap < min_iou:
                break
            if known[r] is None and e not in used:
                known[r] = earlier[e]
                used.add(e)
    unknown = tuple(i for i, read in enumerate(known) if read is None)
    return ReadPlan(regions=tuple(regions), known=tuple(known), to_read=unknown[:max_reads])


def remember(plan: ReadPlan, fresh: Mapping[int, Read]) -> tuple[Read, ...]:
    """The session's reads after this frame: reused ones moved to their region's current
    box, plus the `fresh` ones (by region index). Regions neither known nor read (past the
    cap) are left out, so the next frame reads them."""
    reads: list[Read] = []
    for i, region in enumerate(plan.regions):
        if i in fresh:
            reads.append(fresh[i])
        elif (known := plan.known[i]) is not None:
            reads.append(Read(box=region, text=known.text, score=known.score))
    return tuple(reads)
