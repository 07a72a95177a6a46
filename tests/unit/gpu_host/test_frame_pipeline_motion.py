"""The frame pipeline with the motion gate: when on, a frame that barely differs from the
session's last inferred one gets that frame's results without a Triton request (`reused`);
when off, every frame is inferred. Triton is the scripted gateway."""

from __future__ import annotations

import asyncio

import pytest

from gpu_host.backend.metrics import Metrics
from gpu_host.backend.motion import DEFAULT_THRESHOLD, MotionMemory
from gpu_host.backend.pipeline import FrameOutcome, FramePipeline, ServedModel, SessionReads
from gpu_host.backend.protocol import FrameHeader, result_message
from tests.unit.gpu_host.motion_support import jpeg_frame, view
from tests.unit.gpu_host.test_frame_pipeline import BoxModel, Reader, ScriptedGateway, spec

LATE_BUDGET_S = 0.5
"""The budget of the test whose model is made late (held until the budget ends it)."""
BUDGET_S = 60.0
"""Every other test's: its frames (640×480 JPEGs, OCR crops in worker threads) take tens of
milliseconds, and must never be late, however loaded the machine."""


def gated_pipeline(
    gateway: ScriptedGateway, threshold: float | None, budget_s: float = BUDGET_S
) -> FramePipeline:
    return FramePipeline(
        models={
            "detect": ServedModel(spec("detect"), BoxModel("detect")),
            "slow": ServedModel(spec("slow"), BoxModel("slow")),
            "text": ServedModel(spec("text"), BoxModel("text")),
            "ocr": ServedModel(spec("ocr", regions_from="text"), Reader("ocr")),
        },
        gateway=gateway,
        metrics=Metrics(),
        budget_s=budget_s,
        motion_threshold=threshold,
    )


async def run_views(
    pipe: FramePipeline,
    shifts: list[int],
    models: tuple[str, ...] = ("detect",),
    memory: MotionMemory | None = None,
    reads: SessionReads | None = None,
) -> list[FrameOutcome]:
    memory = memory if memory is not None else MotionMemory()
    reads = reads or SessionReads()
    return [
        await pipe.run(jpeg_frame(view(shift, noise_seed=i), i + 1), models, reads, memory)
        for i, shift in enumerate(shifts)
    ]


@pytest.mark.parametrize(
    ("threshold", "shifts", "reused", "inferred"),
    [
        (DEFAULT_THRESHOLD, [0, 0, 0], [False, True, True], 1),
        (DEFAULT_THRESHOLD, [0, 40, 80], [False, False, False], 3),
        (DEFAULT_THRESHOLD, [0, 0, 40, 40], [False, True, False, True], 2),
        (None, [0, 0, 0], [False, False, False], 3),
    ],
    ids=["static, on", "moving, on", "moved then still, on", "static, off"],
)
async def test_unchanged_frames_reuse_the_last_results_only_when_the_gate_is_on(
    threshold: float | None, shifts: list[int], reused: list[bool], inferred: int
) -> None:
    gateway = ScriptedGateway()
    outcomes = await run_views(gated_pipeline(gateway, threshold), shifts)
    assert [o.reused for o in outcomes] == reused
    assert gateway.items == {"detect": inferred}
    for outcome in outcomes:
        assert outcome.outputs == outcomes[0].outputs
        assert ("motion" in outcome.timing_ms) is (threshold is not None)


async def test_a_reused_result_says_so_on_the_wire_with_the_new_frame_s_header() -> None:
    outcomes = await run_views(gated_pipeline(ScriptedGateway(), DEFAULT_THRESHOLD), [0, 0])
    first, second = (
        result_message(
            header=FrameHeader(n, n * 1000),
            outputs=o.outputs,
            timing_ms={},
            dropped=0,
            late=o.late,
            reused=o.reused,
        )
        for n, o in enumerate(outcomes, start=1)
    )
    assert "reused" not in first
    assert second["reused"] is True
    assert (second["frame_id"], second["capture_us"]) == (2, 2000)
    assert second["detections"] == first["detections"]


async def test_each_session_has_its_own_reference() -> None:
    gateway = ScriptedGateway()
    pipe = gated_pipeline(gateway, DEFAULT_THRESHOLD)
    one, two = MotionMemory(), MotionMemory()
    assert [o.reused for o in await run_views(pipe, [0], memory=one)] == [False]
    assert [o.reused for o in await run_views(pipe, [0], memory=two)] == [False]
    assert [o.reused for o in await run_views(pipe, [0], memory=one)] == [True]
    assert gateway.items == {"detect": 2}


async def test_a_frame_with_a_late_model_is_no_reference() -> None:
    gateway = ScriptedGateway(holds={"slow": asyncio.Event()})
    pipe = gated_pipeline(gateway, DEFAULT_THRESHOLD, LATE_BUDGET_S)
    memory = MotionMemory()
    (late,) = await run_views(pipe, [0], ("detect", "slow"), memory)
    assert late.late == ("slow",)
    assert memory.reference is None
    gateway.holds.clear()
    outcomes = await run_views(pipe, [0, 0], ("detect", "slow"), memory)
    assert [o.reused for o in outcomes] == [False, True]
    assert [o.late for o in outcomes] == [(), ()]


async def test_a_pending_read_text_request_is_inferred_not_reused() -> None:
    gateway = ScriptedGateway()
    pipe = gated_pipeline(gateway, DEFAULT_THRESHOLD)
    memory, reads = MotionMemory(), SessionReads()
    await run_views(pipe, [0, 0], ("ocr",), memory, reads)
    reads.ask_reread()
    (asked,) = await run_views(pipe, [0], ("ocr",), memory, reads)
    (after,) = await run_views(pipe, [0], ("ocr",), memory, reads)
    assert (asked.reused, after.reused) == (False, True)
    assert gateway.items["text"] == 2


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="motion_threshold"):
        gated_pipeline(ScriptedGateway(), -1.0)
