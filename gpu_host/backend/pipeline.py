"""One frame through the session's models: decode once, then every model concurrently.

Each model is its spec (tensors, batching) plus its `Processor` (pure pre/post-processing):
adding a model is a spec entry and a processor, no change here. All requests go through the
one shared Triton client, so Triton's dynamic batcher merges them across sessions.

- A region model (`ocr`) runs after the model whose regions it reads (`text`, run once even
  when the session did not select it), and only on the regions `ocr_trigger` says need
  reading; the others reuse the session's earlier reads (`SessionReads`).
- The frame budget: the models start together; when `budget_s` has passed, every selected
  model still running is cancelled and named in `late`, and the finished ones' results go
  out. A model that fails (Triton down, a bug) fails the frame, as before.

CPU work is placed by what it costs against the hop to a worker thread (≈0.2–0.4 ms of CPU
here: a pool hand-off, a wake-up and the loop's wake-up back). The decode and every model's
pre-processing run together, on the loop for a frame of at most `INLINE_DECODE_PIXELS` (the
engine's 320×240) and otherwise in ONE worker-thread call (OpenCV and NumPy release the GIL),
so that a large frame does not stall the event loop all sessions share. Post-processing runs
on the loop as a model's answer arrives when the answer is small (at most
`INLINE_POSTPROCESS_BYTES`: the built-in detect, pose and face, a fraction of a millisecond
each), and in a worker thread otherwise (the text detector's probability map, a YOLOv8
export's 8400 anchors: milliseconds). A region model's crops and reads, which grow with the
number of regions, keep their threads too.
The frame is decoded once, at the smallest size libjpeg can decode it at that still covers
every selected model's input (`frames.dct_reduction`).

Motion gating (`motion_threshold`, off by default): in the same call as the decode, the
decoded frame is compared with the session's last inferred frame (`motion`); when it barely
differs, the frame's outcome is that frame's results again (`reused`), without Triton.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt
from prometheus_client import Histogram

from gpu_host.backend.frames import Frame, dct_reduction, decode_jpeg
from gpu_host.backend.metrics import Metrics
from gpu_host.backend.motion import MotionMemory, Reference, Thumbnail, gate_decision, thumbnail
from gpu_host.backend.ocr_trigger import Read, plan_reads, remember
from gpu_host.models.spec import ModelSpec
from gpu_host.vision.types import (
    Box,
    FixedInput,
    Image,
    Letterbox,
    ModelOutput,
    Processor,
    RegionProcessor,
    TextRead,
)

WARMUP_SIZE = (480, 640)
"""H×W of the blank frame used for the warm-up inference (a typical webcam frame)."""

WHOLE_FRAME: Box = (0.0, 0.0, 1.0, 1.0)

INLINE_DECODE_PIXELS = 320 * 240
"""Largest frame (pixels) decoded and pre-processed on the event loop. The engine's 320×240
frames cost 0.3–1.5 ms there (the decode and each selected model's letterbox), less than the
hop to a worker thread and back adds to it (a pool hand-off and two wake-ups: with the gRPC
client gone, the largest cost left per `face` frame; docs/performance.md); a larger frame (a
client's choice, up to `max_frame_pixels`) takes the thread, so that it cannot stall the
other sessions' frames for long."""

INLINE_POSTPROCESS_BYTES = 128 * 1024
"""Largest output (bytes per item) post-processed on the event loop: post-processing cost
grows with the output, and past this it costs more than the hop to a worker thread."""


Arrays = dict[str, npt.NDArray[Any]]


class Gateway(Protocol):
    """What the pipeline needs of Triton (`TritonGateway`: the one shared client)."""

    async def infer(self, spec: ModelSpec, tensors: Mapping[str, npt.NDArray[Any]]) -> Arrays:
        """One item, no batch dimension in or out."""
        ...

    async def infer_many(
        self, spec: ModelSpec, items: Sequence[Mapping[str, npt.NDArray[Any]]]
    ) -> list[Arrays]:
        """Several items, batched as the spec allows."""
        ...


@dataclass(frozen=True, slots=True)
class ServedModel:
    spec: ModelSpec
    processor: Processor


@dataclass(slots=True)
class SessionReads:
    """One session's memory for the OCR trigger."""

    reads: dict[str, tuple[Read, ...]] = field(default_factory=dict)
    """The last frame's reads, per region model."""
    asked: int = 0
    """`read_text` requests received."""
    honoured: int = 0
    """Requests that a completed frame acted on: those received before it planned its reads
    (a request that arrives while a frame is being read waits for the next one)."""

    def ask_reread(self) -> None:
        self.asked += 1


@dataclass(frozen=True, slots=True)
class Prepared:
    """One whole-frame model's input, made with the frame's decode."""

    tensors: dict[str, npt.NDArray[Any]]
    letterbox: Letterbox
    seconds: float


@dataclass(frozen=True, slots=True)
class FrameOutcome:
    outputs: tuple[ModelOutput, ...]
    timing_ms: dict[str, float]
    late: tuple[str, ...] = ()
    """Selected models cancelled at the frame budget (their outputs are missing)."""
    reused: bool = False
    """The motion gate found the frame unchanged: `outputs` are the last inferred frame's."""


@dataclass(frozen=True, slots=True)
class _Decoded:
    """What a frame's decode call returns."""

    image: Image
    prepared: dict[str, Prepared]
    decode_s: float
    gate_s: float | None
    """The gate's thumbnail and decision (None: the gate is off)."""
    thumbnail: Thumbnail | None
    """The gate's view of the frame (None: the gate is off)."""
    reuse: Reference | None
    """The reference whose results the frame reuses (None: infer it)."""


class FramePipeline:
    def __init__(
        self,
        *,
        models: Mapping[str, ServedModel],
        gateway: Gateway,
        metrics: Metrics,
        budget_s: float,
        motion_threshold: float | None = None,
    ) -> None:
        """`motion_threshold`: the motion gate's threshold (`motion.gate_decision`); None
        turns the gate off."""
        if budget_s <= 0:
            raise ValueError("budget_s must be > 0")
        if motion_threshold is not None and motion_threshold < 0:
            raise ValueError("motion_threshold must be >= 0")
        self._motion_threshold = motion_threshold
        self._models = dict(models)
        self._regions = {
            name: processor
            for name, model in self._models.items()
            if (processor := _region_processor(model, self._models)) is not None
        }
        self._gateway = gateway
        self._metrics = metrics
        self._budget_s = budget_s
        self._input_hw = {
            name: model.processor.input_hw if isinstance(model.processor, FixedInput) else None
            for name, model in self._models.items()
        }
        """Each model's fixed input size (None: unknown), looked up once: an isinstance check
        against a runtime Protocol costs more than the rest of the per-frame bookkeeping."""
        self._inline_post = {
            name: _output_bytes(model.spec) <= INLINE_POSTPROCESS_BYTES
            for name, model in self._models.items()
        }
        self._stages: dict[tuple[str, str], Histogram] = {}
        # A frame's OpenCV calls take well under a millisecond each: OpenCV's own thread pool
        # would cost more in hand-offs than it saves. Cores are used by sessions running
        # side by side (and by worker processes), not by splitting one resize.
        cv2.setNumThreads(1)

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self._models)

    @property
    def region_models(self) -> frozenset[str]:
        """The served models that read regions another model found (OCR)."""
        return frozenset(self._regions)

    async def run(
        self,
        frame: Frame,
        models: Sequence[str],
        reads: SessionReads,
        motion: MotionMemory | None = None,
    ) -> FrameOutcome:
        """Decode `frame` and run `models` on it; raises `FrameError` for the client.
        `motion`: the session's gate memory (used when the gate is on)."""
        started = time.monotonic()
        timing: dict[str, float] = {"queue": (started - frame.received_at) * 1000}
        self._observe("queue", "", started - frame.received_at)
        reduction = self.decode_reduction(models, frame.width, frame.height)
        whole = self._whole_frame_models(models)
        gate = motion if self._motion_threshold is not None else None
        # A pending `read_text` asks for fresh reads: that frame is inferred.
        reference = None if gate is None or reads.asked > reads.honoured else gate.reference
        args = (frame, reduction, whole, tuple(models) if gate is not None else None, reference)
        if frame.width * frame.height <= INLINE_DECODE_PIXELS:
            decoded = self._decode_and_prepare(*args)
        else:
            decoded = await asyncio.to_thread(self._decode_and_prepare, *args)
        timing["decode"] = decoded.decode_s * 1000
        self._observe("decode", "", decoded.decode_s)
        if decoded.gate_s is not None:
            timing["motion"] = decoded.gate_s * 1000
            self._observe("motion", "", decoded.gate_s)
        late: tuple[str, ...] = ()
        if decoded.reuse is not None:
            outputs, reused = decoded.reuse.outputs, True
        else:
            outputs, late = await self._run_prepared(
                decoded.image, decoded.prepared, models, timing, reads
            )
            reused = False
            if gate is not None and decoded.thumbnail is not None:
                if late:  # incomplete results are no reference
                    gate.forget()
                else:
                    gate.remember(
                        decoded.thumbnail,
                        size=(frame.width, frame.height),
                        models=tuple(models),
                        outputs=outputs,
                    )
        done = time.monotonic()
        timing["total"] = (done - frame.received_at) * 1000
        self._observe("total", "", done - frame.received_at)
        return FrameOutcome(outputs=outputs, timing_ms=timing, late=late, reused=reused)

    async def run_image(
        self,
        image: Image,
        models: Sequence[str],
        timing: dict[str, float],
        reads: SessionReads,
    ) -> tuple[tuple[ModelOutput, ...], tuple[str, ...]]:
        """Run `models` concurrently on a decoded image, within the budget: their outputs
        (in `models` order, late ones left out) and the names of the late ones."""
        whole = self._whole_frame_models(models)
        prepared = await asyncio.to_thread(self._prepare, image, whole)
        return await self._run_prepared(image, prepared, models, timing, reads)

    async def _run_prepared(
        self,
        image: Image,
        prepared: Mapping[str, Prepared],
        models: Sequence[str],
        timing: dict[str, float],
        reads: SessionReads,
    ) -> tuple[tuple[ModelOutput, ...], tuple[str, ...]]:
        # Each task, wait and gather costs the event loop a turn (here ≈10–20 µs of CPU
        # each): one whole-frame model runs in the frame's own task, several in a task each,
        # awaited in turn under one deadline.
        if len(models) == 1 and models[0] not in self._regions:
            return await self._run_one(self._models[models[0]], prepared[models[0]], timing)
        tasks = self._start(image, prepared, models, timing, reads)
        deadline = asyncio.timeout(self._budget_s)
        try:
            async with deadline:
                for name in models:
                    # A failure is read below, once every model is done or late.
                    with contextlib.suppress(Exception):
                        await tasks[name]
        except TimeoutError:
            if not deadline.expired():
                raise
        finally:
            # Late models (and everything, if this frame itself is cancelled) stop here; a
            # request already at Triton is abandoned, its answer ignored.
            unfinished = [task for task in tasks.values() if not task.done()]
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.gather(*unfinished, return_exceptions=True)
        late = tuple(name for name in models if tasks[name].cancelled())
        for name in late:
            self._metrics.models_late.labels(model=name).inc()
        outputs: list[ModelOutput] = []
        for name in models:
            if name not in late:
                # The first failing model (in `models` order) decides the frame's error.
                outputs.append(tasks[name].result())
        return tuple(outputs), late

    async def _run_one(
        self, model: ServedModel, prepared: Prepared, timing: dict[str, float]
    ) -> tuple[tuple[ModelOutput, ...], tuple[str, ...]]:
        """`_run_prepared` for a frame of one whole-frame model: no task of its own."""
        deadline = asyncio.timeout(self._budget_s)
        try:
            async with deadline:
                output = await self._run_model(model, prepared, timing)
        except TimeoutError:
            if not deadline.expired():
                raise  # the model's own error, not the budget's
            self._metrics.models_late.labels(model=model.spec.name).inc()
            return (), (model.spec.name,)
        return (output,), ()

    def requires(self, models: Sequence[str]) -> tuple[str, ...]:
        """Every model Triton must hold to run `models`: each one, after the model whose
        regions it reads (`ocr` needs `text`)."""
        needed: dict[str, None] = {}
        for name in models:
            source = self._models[name].spec.regions_from
            if source is not None:
                needed[source] = None
            needed[name] = None
        return tuple(needed)

    async def warm_up(self, names: Sequence[str] | None = None) -> None:
        """One inference per model of `names` (default: every served one) on a blank frame:
        the first real frame is then fast. No budget: a first inference may load lazily
        (CUDA, TensorRT, the Python stub)."""
        blank = np.full((*WARMUP_SIZE, 3), 128, dtype=np.uint8)
        chosen = self._models.values() if names is None else [self._models[n] for n in names]
        await asyncio.gather(*(self._warm(model, blank) for model in chosen))

    def _whole_frame_models(self, models: Sequence[str]) -> list[str]:
        """The whole-frame models a frame of `models` runs: those selected and the sources
        region models read, each once, in that order."""
        names: dict[str, None] = {}
        for name in models:
            source = self._models[name].spec.regions_from
            names[name if source is None else source] = None
        return list(names)

    def decode_reduction(self, models: Sequence[str], width: int, height: int) -> int:
        """How much smaller a width×height frame may be decoded for `models` (1: not at all).
        Region models crop the frame at full resolution; a processor that does not say its
        input size gets the frame as sent."""
        if any(self._models[name].spec.regions_from is not None for name in models):
            return 1
        scale = 0.0
        for name in models:
            size = self._input_hw[name]
            if size is None:
                return 1
            scale = max(scale, min(size[1] / width, size[0] / height))
        return dct_reduction(scale)

    def _decode_and_prepare(
        self,
        frame: Frame,
        reduction: int,
        names: Sequence[str],
        gated: tuple[str, ...] | None,
        reference: Reference | None,
    ) -> _Decoded:
        """Decode (on the loop or in a worker thread: `INLINE_DECODE_PIXELS`); when `gated`
        (the session's models: the gate is on), the gate's decision against `reference`;
        then, unless the frame reuses it, every whole-frame model's input."""
        t0 = time.monotonic()
        image = decode_jpeg(frame, reduction)
        t1 = time.monotonic()
        if gated is None or self._motion_threshold is None:
            return _Decoded(image, self._prepare(image, names), t1 - t0, None, None, None)
        small = thumbnail(image)
        reuse = gate_decision(
            reference,
            small,
            size=(frame.width, frame.height),
            models=gated,
            threshold=self._motion_threshold,
        )
        gate_s = time.monotonic() - t1
        if reuse:
            return _Decoded(image, {}, t1 - t0, gate_s, small, reference)
        return _Decoded(image, self._prepare(image, names), t1 - t0, gate_s, small, None)

    def _prepare(self, image: Image, names: Sequence[str]) -> dict[str, Prepared]:
        prepared = {}
        for name in names:
            t0 = time.monotonic()
            tensors, letterbox = self._models[name].processor.preprocess(image)
            prepared[name] = Prepared(tensors, letterbox, time.monotonic() - t0)
        return prepared

    def _start(
        self,
        image: Image,
        prepared: Mapping[str, Prepared],
        models: Sequence[str],
        timing: dict[str, float],
        reads: SessionReads,
    ) -> dict[str, asyncio.Task[ModelOutput]]:
        """A task per model, plus the region sources they read (started once each)."""
        tasks: dict[str, asyncio.Task[ModelOutput]] = {}

        def start(name: str) -> asyncio.Task[ModelOutput]:
            if name not in tasks:
                model = self._models[name]
                source = model.spec.regions_from
                job: Coroutine[Any, Any, ModelOutput] = (
                    self._run_model(model, prepared[name], timing)
                    if source is None
                    else self._read_regions(model, image, start(source), timing, reads)
                )
                tasks[name] = asyncio.create_task(job, name=f"model-{name}")
            return tasks[name]

        for name in models:
            start(name)
        return tasks

    async def _run_model(
        self, model: ServedModel, prepared: Prepared, timing: dict[str, float]
    ) -> ModelOutput:
        t1 = time.monotonic()
        outputs = await self._gateway.infer(model.spec, prepared.tensors)
        t2 = time.monotonic()
        if self._inline_post[model.spec.name]:
            result = model.processor.postprocess(outputs, prepared.letterbox)
        else:
            result = await asyncio.to_thread(
                model.processor.postprocess, outputs, prepared.letterbox
            )
        self._record(model.spec.name, timing, t1 - prepared.seconds, t1, t2, time.monotonic())
        return result

    async def _read_regions(
        self,
        model: ServedModel,
        image: Image,
        source: asyncio.Task[ModelOutput],
        timing: dict[str, float],
        reads: SessionReads,
    ) -> ModelOutput:
        """Recognize what the trigger says to, reuse the rest, remember the reads."""
        name = model.spec.name
        found = await source
        asked = reads.asked
        plan = plan_reads(
            reads.reads.get(name, ()),
            [d.box for d in found.detections],
            reread=asked > reads.honoured,
        )
        boxes = [plan.regions[i] for i in plan.to_read]
        recognized = await self._recognize(model, image, boxes, timing)
        fresh = {
            i: _read(out, plan.regions[i]) for i, out in zip(plan.to_read, recognized, strict=True)
        }
        memory = remember(plan, fresh)
        reads.reads[name] = memory
        reads.honoured = asked
        return ModelOutput(
            texts=tuple(TextRead(name, r.text, r.box, r.score) for r in memory if r.text)
        )

    async def _recognize(
        self, model: ServedModel, image: Image, boxes: Sequence[Box], timing: dict[str, float]
    ) -> list[ModelOutput]:
        """One item per region, in as few Triton requests as the batch size allows."""
        if not boxes:
            return []
        processor = self._regions[model.spec.name]
        t0 = time.monotonic()
        items = await asyncio.to_thread(
            lambda: [processor.preprocess_region(image, box) for box in boxes]
        )
        t1 = time.monotonic()
        outputs = await self._gateway.infer_many(model.spec, [tensors for tensors, _ in items])
        t2 = time.monotonic()
        results = await asyncio.to_thread(
            lambda: [
                processor.postprocess(out, letterbox)
                for out, (_, letterbox) in zip(outputs, items, strict=True)
            ]
        )
        self._record(model.spec.name, timing, t0, t1, t2, time.monotonic())
        return results

    async def _warm(self, model: ServedModel, image: Image) -> None:
        if model.spec.regions_from is None:
            prepared = await asyncio.to_thread(self._prepare, image, [model.spec.name])
            await self._run_model(model, prepared[model.spec.name], {})
        else:  # a blank frame has no regions: read the whole frame once instead
            await self._recognize(model, image, [WHOLE_FRAME], {})

    def _record(
        self, name: str, timing: dict[str, float], t0: float, t1: float, t2: float, t3: float
    ) -> None:
        for stage, seconds in (
            ("preprocess", t1 - t0),
            ("infer", t2 - t1),
            ("postprocess", t3 - t2),
        ):
            timing[f"{name}.{stage}"] = seconds * 1000
            self._observe(stage, name, seconds)

    def _observe(self, stage: str, model: str, seconds: float) -> None:
        # The labelled child is looked up once: `labels()` validates and locks on every call.
        child = self._stages.get((stage, model))
        if child is None:
            child = self._metrics.stage_seconds.labels(stage=stage, model=model)
            self._stages[(stage, model)] = child
        child.observe(seconds)


def _region_processor(
    model: ServedModel, served: Mapping[str, ServedModel]
) -> RegionProcessor | None:
    """A region model's processor (checked), or None for a whole-frame model."""
    source = model.spec.regions_from
    if source is None:
        return None
    if source not in served:
        raise ValueError(f"{model.spec.name} reads the regions of {source!r}, which is not served")
    if not isinstance(model.processor, RegionProcessor):
        raise TypeError(f"{model.spec.name}: its processor cannot take regions")
    return model.processor


def _output_bytes(spec: ModelSpec) -> int:
    """Bytes of one item's outputs."""
    return sum(tensor.nbytes for tensor in spec.outputs)


def _read(output: ModelOutput, box: Box) -> Read:
    """A recognized region as the trigger remembers it (empty text: nothing legible)."""
    if not output.texts:
        return Read(box=box, text="", score=0.0)
    text = output.texts[0]
    return Read(box=box, text=text.text, score=text.score)
