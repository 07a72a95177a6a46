"""The backend's own CPU per frame, without sockets or Triton: `python -m bench.pipeline`.

    python -m bench.pipeline [--models face detect,pose,face] [--frames 500] [--repeats 5]

One process, one event loop: the engine's 320×240 bench frame goes through what a worker does
with it between the socket and Triton and back — header and JPEG checks, `FramePipeline.run`
(decode, letterboxes, post-processing, timing, metrics) and the result's JSON — with every
model's answer canned: what ONNX Runtime computes for that frame, once, up front.

Baseline, measured in the same run: the same frame decoded (as small as the pipeline decodes
it), then each model's preprocess and postprocess called directly on the canned answer — the
work no design skips. Their ratio is
what the pipeline's bookkeeping adds.

What `bench.backend` measures on top of this is the I/O: a frame's WebSocket and Triton
round trips, each waking the event loop (docs/performance.md). This one varies little from
run to run (the minimum over `--repeats` is printed, and the median): the place to see what
a change to the per-frame code is worth.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import orjson
import uvloop

from bench.backend import DEFAULT_SETS
from bench.roundtrip import bench_frame, run_item
from gpu_host.backend.frames import check_jpeg, decode_jpeg
from gpu_host.backend.metrics import Metrics
from gpu_host.backend.pipeline import Arrays, FramePipeline, ServedModel, SessionReads
from gpu_host.backend.protocol import pack_frame, parse_frame_header, result_message
from gpu_host.models.spec import ModelSpec, load_processor, model_catalog

MAX_PIXELS = 10**7
WARMUP_FRAMES = 20


class CannedGateway:
    """Answers every request with the model's canned outputs, at once."""

    def __init__(self, answers: Mapping[str, Arrays]) -> None:
        self.answers = answers
        self.requests = 0

    async def infer(self, spec: ModelSpec, tensors: Mapping[str, npt.NDArray[Any]]) -> Arrays:
        self.requests += 1
        return dict(self.answers[spec.name])

    async def infer_many(
        self, spec: ModelSpec, items: Sequence[Mapping[str, npt.NDArray[Any]]]
    ) -> list[Arrays]:
        return [await self.infer(spec, item) for item in items]


def canned_answers(
    served: Mapping[str, ServedModel], rgb: npt.NDArray[np.uint8]
) -> dict[str, Arrays]:
    """Each model's outputs for the frame, computed once by ONNX Runtime (one item)."""
    answers = {}
    for name, model in served.items():
        session = ort.InferenceSession(str(model.spec.onnx_path))
        tensors, _ = model.processor.preprocess(rgb)
        answers[name] = run_item(session, tensors)
    return answers


@dataclass(frozen=True, slots=True)
class Figures:
    models: str
    pipeline_ms: tuple[float, ...]
    """CPU ms per frame of the backend's path, one figure per repeat."""
    direct_ms: tuple[float, ...]
    """CPU ms per frame of the baseline, one figure per repeat."""
    requests: int
    """Model requests the pipeline made (canned answers), all repeats."""

    @property
    def ratio(self) -> float:
        return min(self.pipeline_ms) / min(self.direct_ms)


def cpu_ms_per_frame(run_frames: Callable[[int], object], frames: int) -> float:
    """This process's CPU ms per frame over `run_frames(frames)`."""
    start = time.process_time()
    run_frames(frames)
    return (time.process_time() - start) * 1000 / frames


def measure(models: Sequence[str], *, frames: int, repeats: int) -> Figures:
    catalog = model_catalog(None)
    served = {name: ServedModel(catalog[name], load_processor(catalog[name])) for name in models}
    image, jpeg = bench_frame()
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    answers = canned_answers(served, rgb)
    gateway = CannedGateway(answers)
    pipeline = FramePipeline(models=served, gateway=gateway, metrics=Metrics(), budget_s=60.0)
    data = pack_frame(1, 1, jpeg)
    reads = SessionReads()

    async def backend_frames(count: int) -> None:
        for _ in range(count):
            header, payload = parse_frame_header(data)
            frame = check_jpeg(header, payload, max_pixels=MAX_PIXELS, received_at=time.monotonic())
            outcome = await pipeline.run(frame, models, reads)
            orjson.dumps(
                result_message(
                    header=frame.header,
                    outputs=outcome.outputs,
                    timing_ms=outcome.timing_ms,
                    dropped=0,
                    late=outcome.late,
                )
            )

    header, payload = parse_frame_header(data)
    frame = check_jpeg(header, payload, max_pixels=MAX_PIXELS, received_at=0.0)
    reduction = pipeline.decode_reduction(models, frame.width, frame.height)

    def direct_frames(count: int) -> None:
        for _ in range(count):
            decoded = decode_jpeg(frame, reduction)
            for name, model in served.items():
                _, letterbox = model.processor.preprocess(decoded)
                model.processor.postprocess(answers[name], letterbox)

    loop = uvloop.new_event_loop()  # what uvicorn runs the workers on
    try:
        loop.run_until_complete(backend_frames(WARMUP_FRAMES))
        gateway.requests = 0
        pipeline_ms, direct_ms = [], []
        for _ in range(repeats):
            pipeline_ms.append(
                cpu_ms_per_frame(lambda n: loop.run_until_complete(backend_frames(n)), frames)
            )
            direct_ms.append(cpu_ms_per_frame(direct_frames, frames))
    finally:
        loop.close()
    return Figures(",".join(models), tuple(pipeline_ms), tuple(direct_ms), gateway.requests)


def report(figures: Figures) -> str:
    return (
        f"{figures.models:20s} pipeline {min(figures.pipeline_ms):6.3f} ms/frame "
        f"(median {statistics.median(figures.pipeline_ms):.3f})  "
        f"direct {min(figures.direct_ms):6.3f} ms/frame  "
        f"pipeline / direct {figures.ratio:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=list(DEFAULT_SETS), help="model sets, comma-separated"
    )
    parser.add_argument("--frames", type=int, default=500, help="frames per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.frames < 1 or args.repeats < 1:
        parser.error("--frames and --repeats must be at least 1")
    print(
        f"the bench frame (320x240 JPEG), {args.frames} frames x {args.repeats} repeats per set; "
        "model outputs canned (ONNX Runtime, once); CPU time of this one process",
        flush=True,
    )
    for models in args.models:
        names = [name for name in models.split(",") if name]
        print(report(measure(names, frames=args.frames, repeats=args.repeats)), flush=True)


if __name__ == "__main__":
    main()
