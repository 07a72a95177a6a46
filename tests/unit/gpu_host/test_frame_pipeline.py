"""The frame pipeline's rules: models run concurrently within the frame budget, and a region
model (OCR) reads only what the trigger says. Triton is replaced by a scripted gateway — the
injected fault is a model that is slow (or failing)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from gpu_host.backend.frames import Frame, check_jpeg
from gpu_host.backend.metrics import Metrics
from gpu_host.backend.pipeline import FramePipeline, ServedModel, SessionReads
from gpu_host.backend.protocol import FrameHeader, UnavailableError
from gpu_host.models.spec import DType, ModelSpec, TensorSpec
from gpu_host.vision.types import Box, Detection, Image, Letterbox, ModelOutput, Tensors, TextRead
from tests.unit.gpu_host.dataplane_unit_support import jpeg_bytes

IMAGE = np.zeros((48, 64, 3), np.uint8)
BUDGET_S = 0.5
SLOW_S = 30.0
"""Far beyond the budget: a test that waited for it would time out."""


def spec(name: str, regions_from: str | None = None) -> ModelSpec:
    return ModelSpec(
        name=name,
        onnx_file=f"{name}.onnx",
        inputs=(TensorSpec("x", DType.UINT8, (1,)),),
        outputs=(TensorSpec("y", DType.FP32, (1,)),),
        max_batch_size=4,
        batching=None,
        processor="unused:factory",
        regions_from=regions_from,
    )


class BoxModel:
    """A detector whose result is a fixed set of boxes."""

    def __init__(self, model: str, boxes: Sequence[Box] = ((0.1, 0.1, 0.5, 0.2),)) -> None:
        self.model = model
        self.boxes = list(boxes)

    def preprocess(self, image: Image) -> tuple[dict[str, npt.NDArray[Any]], Letterbox]:
        return {"x": np.zeros(1, np.uint8)}, Letterbox(1.0, 0, 0, image.shape[1], image.shape[0])

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        return ModelOutput(
            detections=tuple(Detection(self.model, "thing", 0.9, b) for b in self.boxes)
        )


class Reader(BoxModel):
    """A region model that reads every region as the text "line x1"."""

    def preprocess_region(
        self, image: Image, box: Box
    ) -> tuple[dict[str, npt.NDArray[Any]], Letterbox]:
        letterbox = Letterbox(1.0, 0, 0, image.shape[1], image.shape[0], extra={"box": box})
        return {"x": np.zeros(1, np.uint8)}, letterbox

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        box = letterbox.extra.get("box", (0.0, 0.0, 1.0, 1.0))
        return ModelOutput(texts=(TextRead(self.model, f"line {box[0]}", box, 0.9),))


@dataclass
class ScriptedGateway:
    """Answers every request with zeros, after `delays[model]` seconds or by raising
    `failures[model]`; records requests and cancellations."""

    delays: dict[str, float] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    holds: dict[str, asyncio.Event] = field(default_factory=dict)
    """A model's requests wait until its event is set (the test decides when)."""
    arrived: defaultdict[str, asyncio.Event] = field(
        default_factory=lambda: defaultdict(asyncio.Event)
    )
    """Set when a model's first request arrives."""
    items: dict[str, int] = field(default_factory=dict)
    """Items inferred per model."""
    cancelled: list[str] = field(default_factory=list)

    async def infer(
        self, spec: ModelSpec, tensors: Mapping[str, npt.NDArray[Any]]
    ) -> dict[str, npt.NDArray[Any]]:
        (out,) = await self.infer_many(spec, [tensors])
        return out

    async def infer_many(
        self, spec: ModelSpec, items: Sequence[Mapping[str, npt.NDArray[Any]]]
    ) -> list[dict[str, npt.NDArray[Any]]]:
        self.items[spec.name] = self.items.get(spec.name, 0) + len(items)
        self.arrived[spec.name].set()
        try:
            await asyncio.sleep(self.delays.get(spec.name, 0.0))
            if spec.name in self.holds:
                await self.holds[spec.name].wait()
        except asyncio.CancelledError:
            self.cancelled.append(spec.name)
            raise
        if spec.name in self.failures:
            raise self.failures[spec.name]
        return [{"y": np.zeros(1, np.float32)} for _ in items]


def pipeline(gateway: ScriptedGateway, metrics: Metrics | None = None) -> FramePipeline:
    models = {
        "fast": ServedModel(spec("fast"), BoxModel("fast")),
        "slow": ServedModel(spec("slow"), BoxModel("slow")),
        "text": ServedModel(
            spec("text"), BoxModel("text", [(0.1, 0.1, 0.5, 0.2), (0.1, 0.5, 0.6, 0.6)])
        ),
        "ocr": ServedModel(spec("ocr", regions_from="text"), Reader("ocr")),
    }
    return FramePipeline(
        models=models, gateway=gateway, metrics=metrics or Metrics(), budget_s=BUDGET_S
    )


async def run(
    pipe: FramePipeline, models: Sequence[str], reads: SessionReads | None = None
) -> tuple[tuple[ModelOutput, ...], tuple[str, ...], dict[str, float]]:
    timing: dict[str, float] = {}
    outputs, late = await pipe.run_image(IMAGE, models, timing, reads or SessionReads())
    return outputs, late, timing


async def test_models_within_the_budget_all_report() -> None:
    outputs, late, timing = await run(pipeline(ScriptedGateway()), ["fast", "slow"])
    assert late == ()
    assert [o.detections[0].model for o in outputs] == ["fast", "slow"]
    assert {"fast.infer", "slow.infer"} <= set(timing)


async def test_a_model_over_the_budget_is_late_and_cancelled() -> None:
    """Given a model that would take 30 s, when a frame runs it with a fast one, then the
    fast one's result comes out at the budget, the slow one is named late, and its request
    is cancelled rather than left running."""
    gateway = ScriptedGateway(delays={"slow": SLOW_S})
    metrics = Metrics()
    started = time.monotonic()
    outputs, late, timing = await run(pipeline(gateway, metrics), ["slow", "fast"])
    elapsed = time.monotonic() - started
    assert late == ("slow",)
    assert [o.detections[0].model for o in outputs] == ["fast"]
    assert BUDGET_S <= elapsed < BUDGET_S + 1.0
    assert gateway.cancelled == ["slow"]
    assert "slow.infer" not in timing
    assert metrics.models_late.labels(model="slow")._value.get() == 1


async def test_every_model_late_gives_an_empty_result() -> None:
    gateway = ScriptedGateway(delays={"fast": SLOW_S, "slow": SLOW_S})
    outputs, late, _ = await run(pipeline(gateway), ["fast", "slow"])
    assert (outputs, late) == ((), ("fast", "slow"))


async def test_a_failing_model_fails_the_frame() -> None:
    gateway = ScriptedGateway(failures={"slow": UnavailableError("triton down")})
    with pytest.raises(UnavailableError, match="triton down"):
        await run(pipeline(gateway), ["fast", "slow"])


async def test_a_cancelled_frame_cancels_its_models() -> None:
    """When the session goes away mid-frame, no model request outlives the frame."""
    gateway = ScriptedGateway(delays={"fast": SLOW_S, "slow": SLOW_S})
    frame = asyncio.create_task(run(pipeline(gateway), ["fast", "slow"]))
    await gateway.arrived["fast"].wait()
    await gateway.arrived["slow"].wait()
    frame.cancel()
    with pytest.raises(asyncio.CancelledError):
        await frame
    assert sorted(gateway.cancelled) == ["fast", "slow"]


async def test_one_model_over_the_budget_is_late_and_cancelled() -> None:
    """A frame of one model runs it in the frame's own task: the budget still cuts it off,
    names it late and cancels its request."""
    gateway = ScriptedGateway(delays={"slow": SLOW_S})
    metrics = Metrics()
    outputs, late, timing = await run(pipeline(gateway, metrics), ["slow"])
    assert (outputs, late) == ((), ("slow",))
    assert gateway.cancelled == ["slow"]
    assert "slow.infer" not in timing
    assert metrics.models_late.labels(model="slow")._value.get() == 1


@pytest.mark.parametrize("models", [["slow"], ["fast", "slow"]], ids=["alone", "with-another"])
async def test_a_models_own_timeout_fails_the_frame_and_is_not_late(models: list[str]) -> None:
    """A TimeoutError raised by the model's request (not by the frame budget) is that
    model's failure: the frame fails with it, and nothing is counted late."""
    gateway = ScriptedGateway(failures={"slow": TimeoutError("gateway timed out")})
    metrics = Metrics()
    with pytest.raises(TimeoutError, match="gateway timed out"):
        await run(pipeline(gateway, metrics), models)
    assert metrics.models_late.labels(model="slow")._value.get() == 0


async def test_one_failing_model_fails_the_frame() -> None:
    gateway = ScriptedGateway(failures={"slow": UnavailableError("triton down")})
    with pytest.raises(UnavailableError, match="triton down"):
        await run(pipeline(gateway), ["slow"])


async def test_a_cancelled_frame_of_one_model_cancels_its_request() -> None:
    gateway = ScriptedGateway(delays={"slow": SLOW_S})
    frame = asyncio.create_task(run(pipeline(gateway), ["slow"]))
    await gateway.arrived["slow"].wait()
    frame.cancel()
    with pytest.raises(asyncio.CancelledError):
        await frame
    assert gateway.cancelled == ["slow"]


async def test_the_first_failing_model_in_order_decides_the_error() -> None:
    """Both fail; the frame's error is the first selected model's, whichever failed first."""
    gateway = ScriptedGateway(
        delays={"fast": 0.05},
        failures={"fast": UnavailableError("fast down"), "slow": UnavailableError("slow down")},
    )
    with pytest.raises(UnavailableError, match="fast down"):
        await run(pipeline(gateway), ["fast", "slow"])


async def test_ocr_runs_the_text_detector_without_reporting_it() -> None:
    gateway = ScriptedGateway()
    outputs, late, timing = await run(pipeline(gateway), ["ocr"])
    assert late == ()
    ((texts),) = [o.texts for o in outputs]
    assert [t.text for t in texts] == ["line 0.1", "line 0.1"]
    assert all(not o.detections for o in outputs), "text ran for OCR only"
    assert gateway.items == {"text": 1, "ocr": 2}
    assert {"text.infer", "ocr.infer"} <= set(timing)


async def test_text_selected_with_ocr_runs_once_and_reports_both() -> None:
    gateway = ScriptedGateway()
    outputs, _, _ = await run(pipeline(gateway), ["text", "ocr"])
    assert [len(o.detections) for o in outputs] == [2, 0]
    assert [len(o.texts) for o in outputs] == [0, 2]
    assert gateway.items == {"text": 1, "ocr": 2}


async def test_unchanged_regions_are_not_read_again_until_the_client_asks() -> None:
    gateway = ScriptedGateway()
    pipe, reads = pipeline(gateway), SessionReads()
    first, _, _ = await run(pipe, ["ocr"], reads)
    second, _, timing = await run(pipe, ["ocr"], reads)
    assert gateway.items["ocr"] == 2, "the second frame reused both reads"
    assert second == first
    assert "ocr.infer" not in timing
    reads.ask_reread()
    await run(pipe, ["ocr"], reads)
    assert gateway.items["ocr"] == 4
    await run(pipe, ["ocr"], reads)
    assert gateway.items["ocr"] == 4, "the request was used up: the next frame reuses the reads"


async def test_a_request_during_a_read_waits_for_the_next_frame() -> None:
    """A `read_text` that arrives after a frame planned its reads is not used up by it."""
    release = asyncio.Event()
    gateway = ScriptedGateway(holds={"ocr": release})
    pipe, reads = pipeline(gateway), SessionReads()
    frame = asyncio.create_task(run(pipe, ["ocr"], reads))
    await gateway.arrived["ocr"].wait()  # the frame has planned and is recognizing
    reads.ask_reread()
    release.set()
    await frame
    await run(pipe, ["ocr"], reads)
    assert gateway.items["ocr"] == 4, "the next frame read both regions afresh"
    await run(pipe, ["ocr"], reads)
    assert gateway.items["ocr"] == 4, "and used the request up"


async def test_ocr_waiting_on_a_slow_text_detector_is_late() -> None:
    """A read that is late keeps the client's request for the next frame."""
    gateway = ScriptedGateway()
    pipe, reads = pipeline(gateway), SessionReads()
    await run(pipe, ["ocr"], reads)
    assert gateway.items["ocr"] == 2
    reads.ask_reread()
    gateway.delays["text"] = SLOW_S
    outputs, late, _ = await run(pipe, ["fast", "ocr"], reads)
    assert late == ("ocr",)
    assert len(outputs) == 1
    assert gateway.items["ocr"] == 2, "nothing was read"
    del gateway.delays["text"]
    await run(pipe, ["ocr"], reads)
    assert gateway.items["ocr"] == 4, "the next frame read the unchanged regions again"


async def test_warm_up_reads_the_whole_frame_once() -> None:
    """A blank frame has no text regions: the recognizer is warmed on the whole frame."""
    gateway = ScriptedGateway()
    await pipeline(gateway).warm_up()
    assert gateway.items == {"fast": 1, "slow": 1, "text": 1, "ocr": 1}


def test_a_region_model_needs_its_source_served() -> None:
    with pytest.raises(ValueError, match="reads the regions of 'text', which is not served"):
        FramePipeline(
            models={"ocr": ServedModel(spec("ocr", regions_from="text"), Reader("ocr"))},
            gateway=ScriptedGateway(),
            metrics=Metrics(),
            budget_s=1,
        )


def test_a_region_model_needs_a_region_processor() -> None:
    with pytest.raises(TypeError, match="cannot take regions"):
        FramePipeline(
            models={
                "text": ServedModel(spec("text"), BoxModel("text")),
                "ocr": ServedModel(spec("ocr", regions_from="text"), BoxModel("ocr")),
            },
            gateway=ScriptedGateway(),
            metrics=Metrics(),
            budget_s=1,
        )


class SizedModel(BoxModel):
    """A whole-frame model with a fixed input size; remembers the frames it was given and
    the thread that post-processed its answers."""

    def __init__(self, model: str, input_hw: tuple[int, int]) -> None:
        super().__init__(model)
        self.input_hw = input_hw
        self.seen: list[tuple[int, ...]] = []
        self.post_threads: list[int] = []
        self.pre_threads: list[int] = []

    def preprocess(self, image: Image) -> tuple[dict[str, npt.NDArray[Any]], Letterbox]:
        self.seen.append(image.shape)
        self.pre_threads.append(threading.get_ident())
        return super().preprocess(image)

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        self.post_threads.append(threading.get_ident())
        return super().postprocess(outputs, letterbox)


def frame_of(width: int, height: int) -> Frame:
    jpeg = jpeg_bytes(width, height)
    return check_jpeg(FrameHeader(1, 0), jpeg, max_pixels=10**7, received_at=time.monotonic())


@pytest.mark.parametrize(
    ("selected", "shape"),
    [
        (["small"], (120, 160, 3)),  # 128 px of a 640×480 frame: a quarter still covers it
        (["small", "large"], (480, 640, 3)),  # 416 px needs more than half
        (["small", "plain"], (480, 640, 3)),  # a processor that does not say its size
        (["small", "ocr"], (480, 640, 3)),  # regions are cropped at full resolution
    ],
)
async def test_a_frame_is_decoded_once_at_the_size_every_model_needs(
    selected: list[str], shape: tuple[int, ...]
) -> None:
    small, large = SizedModel("small", (128, 128)), SizedModel("large", (416, 416))
    pipe = FramePipeline(
        models={
            "small": ServedModel(spec("small"), small),
            "large": ServedModel(spec("large"), large),
            "plain": ServedModel(spec("plain"), BoxModel("plain")),
            "text": ServedModel(spec("text"), BoxModel("text")),
            "ocr": ServedModel(spec("ocr", regions_from="text"), Reader("ocr")),
        },
        gateway=ScriptedGateway(),
        metrics=Metrics(),
        budget_s=BUDGET_S,
    )
    await pipe.run(frame_of(640, 480), selected, SessionReads())
    assert small.seen == [shape]


@pytest.mark.parametrize(("output_dims", "on_the_loop"), [((4,), True), ((1_000_000,), False)])
async def test_small_answers_are_post_processed_on_the_loop_large_ones_in_a_thread(
    output_dims: tuple[int, ...], on_the_loop: bool
) -> None:
    """A large output (a YOLOv8 export's anchors) would stall every session on the loop."""
    model = SizedModel("m", (32, 32))
    sized = dataclasses.replace(spec("m"), outputs=(TensorSpec("y", DType.FP32, output_dims),))
    pipe = FramePipeline(
        models={"m": ServedModel(sized, model)},
        gateway=ScriptedGateway(),
        metrics=Metrics(),
        budget_s=BUDGET_S,
    )
    await pipe.run(frame_of(64, 48), ["m"], SessionReads())
    assert (model.post_threads == [threading.get_ident()]) is on_the_loop


@pytest.mark.parametrize(
    ("size", "on_the_loop"),
    [((320, 240), True), ((240, 320), True), ((321, 240), False), ((640, 480), False)],
)
async def test_engine_sized_frames_are_decoded_on_the_loop_larger_ones_in_a_thread(
    size: tuple[int, int], on_the_loop: bool
) -> None:
    """Up to the engine's 320×240 the thread hop costs more than the decode; a larger frame
    would stall every session's frames on the loop."""
    model = SizedModel("m", (32, 32))
    pipe = FramePipeline(
        models={"m": ServedModel(spec("m"), model)},
        gateway=ScriptedGateway(),
        metrics=Metrics(),
        budget_s=BUDGET_S,
    )
    await pipe.run(frame_of(*size), ["m"], SessionReads())
    assert (model.pre_threads == [threading.get_ident()]) is on_the_loop
