"""One frame through the session's models: decode once, then every model concurrently.

Each model is its spec (tensors, batching) plus its `Processor` (pure pre/post-processing):
adding a model is a spec entry and a processor, no change here. CPU work (decode, pre- and
post-processing) runs in worker threads (OpenCV, NumPy and Pillow release the GIL), so one
session's frame does not stall the event loop that all sessions share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gpu_host.backend.frames import Frame, decode_jpeg
from gpu_host.backend.metrics import Metrics
from gpu_host.backend.triton_gateway import TritonGateway
from gpu_host.models.spec import ModelSpec
from gpu_host.vision.types import Image, ModelOutput, Processor

WARMUP_SIZE = (480, 640)
"""H×W of the blank frame used for the warm-up inference (a typical webcam frame)."""


@dataclass(frozen=True, slots=True)
class ServedModel:
    spec: ModelSpec
    processor: Processor


@dataclass(frozen=True, slots=True)
class FrameOutcome:
    outputs: tuple[ModelOutput, ...]
    timing_ms: dict[str, float]


class FramePipeline:
    def __init__(
        self, *, models: Mapping[str, ServedModel], gateway: TritonGateway, metrics: Metrics
    ) -> None:
        self._models = dict(models)
        self._gateway = gateway
        self._metrics = metrics

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self._models)

    async def run(self, frame: Frame, models: Sequence[str]) -> FrameOutcome:
        """Decode `frame` and run `models` on it; raises `FrameError` for the client."""
        started = time.monotonic()
        timing: dict[str, float] = {"queue": (started - frame.received_at) * 1000}
        self._observe("queue", "", started - frame.received_at)
        image = await asyncio.to_thread(decode_jpeg, frame)
        decoded = time.monotonic()
        timing["decode"] = (decoded - started) * 1000
        self._observe("decode", "", decoded - started)
        outputs = await self.run_image(image, models, timing)
        done = time.monotonic()
        timing["total"] = (done - frame.received_at) * 1000
        self._observe("total", "", done - frame.received_at)
        return FrameOutcome(outputs=outputs, timing_ms=timing)

    async def run_image(
        self, image: Image, models: Sequence[str], timing: dict[str, float]
    ) -> tuple[ModelOutput, ...]:
        """Run `models` concurrently on a decoded image; per-model stage times go to `timing`."""
        results = await asyncio.gather(
            *(self._run_model(self._models[name], image, timing) for name in models),
            return_exceptions=True,
        )
        outputs: list[ModelOutput] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result  # the first failing model decides the frame's error
            outputs.append(result)
        return tuple(outputs)

    async def warm_up(self) -> None:
        """One inference per served model on a blank frame: the first real frame is then fast."""
        blank = np.full((*WARMUP_SIZE, 3), 128, dtype=np.uint8)
        await self.run_image(blank, self.model_names, {})

    async def _run_model(
        self, model: ServedModel, image: Image, timing: dict[str, float]
    ) -> ModelOutput:
        name = model.spec.name
        t0 = time.monotonic()
        tensors, letterbox = await asyncio.to_thread(model.processor.preprocess, image)
        t1 = time.monotonic()
        outputs = await self._gateway.infer(model.spec, tensors)
        t2 = time.monotonic()
        result = await asyncio.to_thread(model.processor.postprocess, outputs, letterbox)
        t3 = time.monotonic()
        for stage, seconds in (
            ("preprocess", t1 - t0),
            ("infer", t2 - t1),
            ("postprocess", t3 - t2),
        ):
            timing[f"{name}.{stage}"] = seconds * 1000
            self._observe(stage, name, seconds)
        return result

    def _observe(self, stage: str, model: str, seconds: float) -> None:
        self._metrics.stage_seconds.labels(stage=stage, model=model).observe(seconds)
