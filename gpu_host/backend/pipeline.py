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

CPU work (decode, pre- and post-processing) runs in worker threads (OpenCV, NumPy and Pillow
release the GIL), so one session's frame does not stall the event loop all sessions share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from gpu_host.backend.frames import Frame, decode_jpeg
from gpu_host.backend.metrics import Metrics
from gpu_host.backend.ocr_trigger import Read, plan_reads, remember
from gpu_host.models.spec import ModelSpec
from gpu_host.vision.types import (
    Box,
    Image,
    ModelOutput,
    Processor,
    RegionProcessor,
    TextRead,
)

WARMUP_SIZE = (480, 640)
"""H×W of the blank frame used for the warm-up inference (a typical webcam frame)."""

WHOLE_FRAME: Box = (0.0, 0.0, 1.0, 1.0)


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
class FrameOutcome:
    outputs: tuple[ModelOutput, ...]
    timing_ms: dict[str, float]
    late: tuple[str, ...] = ()
    """Selected models cancelled at the frame budget (their outputs are missing)."""


class FramePipeline:
    def __init__(
        self,
        *,
        models: Mapping[str, ServedModel],
        gateway: Gateway,
        metrics: Metrics,
        budget_s: float,
    ) -> None:
        if budget_s <= 0:
            raise ValueError("budget_s must be > 0")
        self._models = dict(models)
        self._regions = {
            name: processor
            for name, model in self._models.items()
            if (processor := _region_processor(model, self._models)) is not None
        }
        self._gateway = gateway
        self._metrics = metrics
        self._budget_s = budget_s

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self._models)

    @property
    def region_models(self) -> frozenset[str]:
        """The served models that read regions another model found (OCR)."""
        return frozenset(self._regions)

    async def run(self, frame: Frame, models: Sequence[str], reads: SessionReads) -> FrameOutcome:
        """Decode `frame` and run `models` on it; raises `FrameError` for the client."""
        started = time.monotonic()
        timing: dict[str, float] = {"queue": (started - frame.received_at) * 1000}
        self._observe("queue", "", started - frame.received_at)
        image = await asyncio.to_thread(decode_jpeg, frame)
        decoded = time.monotonic()
        timing["decode"] = (decoded - started) * 1000
        self._observe("decode", "", decoded - started)
        outputs, late = await self.run_image(image, models, timing, reads)
        done = time.monotonic()
        timing["total"] = (done - frame.received_at) * 1000
        self._observe("total", "", done - frame.received_at)
        return FrameOutcome(outputs=outputs, timing_ms=timing, late=late)

    async def run_image(
        self,
        image: Image,
        models: Sequence[str],
        timing: dict[str, float],
        reads: SessionReads,
    ) -> tuple[tuple[ModelOutput, ...], tuple[str, ...]]:
        """Run `models` concurrently on a decoded image, within the budget: their outputs
        (in `models` order, late ones left out) and the names of the late ones."""
        tasks = self._start(image, models, timing, reads)
        late: tuple[str, ...] = ()
        try:
            await asyncio.wait([tasks[name] for name in models], timeout=self._budget_s)
            late = tuple(name for name in models if not tasks[name].done())
        finally:
            # Late models (and everything, if this frame itself is cancelled) stop here; a
            # request already at Triton is abandoned, its answer ignored.
            for task in tasks.values():
                task.cancel()
            results = await asyncio.gather(*tasks.values(), return_exceptions=True)
        settled = dict(zip(tasks, results, strict=True))
        for name in late:
            self._metrics.models_late.labels(model=name).inc()
        outputs: list[ModelOutput] = []
        for name in models:
            if name in late:
                continue
            result = settled[name]
            if isinstance(result, BaseException):
                raise result  # the first failing model decides the frame's error
            outputs.append(result)
        return tuple(outputs), late

    async def warm_up(self) -> None:
        """One inference per served model on a blank frame: the first real frame is then fast.
        No budget: a first inference may load lazily (CUDA, TensorRT, the Python stub)."""
        blank = np.full((*WARMUP_SIZE, 3), 128, dtype=np.uint8)
        await asyncio.gather(*(self._warm(model, blank) for model in self._models.values()))

    def _start(
        self,
        image: Image,
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
                    self._run_model(model, image, timing)
                    if source is None
                    else self._read_regions(model, image, start(source), timing, reads)
                )
                tasks[name] = asyncio.create_task(job, name=f"model-{name}")
            return tasks[name]

        for name in models:
            start(name)
        return tasks

    async def _run_model(
        self, model: ServedModel, image: Image, timing: dict[str, float]
    ) -> ModelOutput:
        t0 = time.monotonic()
        tensors, letterbox = await asyncio.to_thread(model.processor.preprocess, image)
        t1 = time.monotonic()
        outputs = await self._gateway.infer(model.spec, tensors)
        t2 = time.monotonic()
        result = await asyncio.to_thread(model.processor.postprocess, outputs, letterbox)
        self._record(model.spec.name, timing, t0, t1, t2, time.monotonic())
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
            await self._run_model(model, image, {})
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
        self._metrics.stage_seconds.labels(stage=stage, model=model).observe(seconds)


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


def _read(output: ModelOutput, box: Box) -> Read:
    """A recognized region as the trigger remembers it (empty text: nothing legible)."""
    if not output.texts:
        return Read(box=box, text="", score=0.0)
    text = output.texts[0]
    return Read(box=box, text=text.text, score=text.score)
