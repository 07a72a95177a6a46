"""Start → ready and frame round trips through the whole local system, against a baseline.

    python -m bench.roundtrip [--models text,detect] [--frames 60]

It runs the local mode in this process (moto, control API, reconcile loop, host agent, the
real `tritonserver` on the CPU, the backend), presses Start through the API, times the phases
until `ready`, then streams frames over the WebSocket with one in flight, as the engine does.
The baseline, measured in the same run on the same frame, is each model's pre-processing +
ONNX Runtime + post-processing called directly in this process: the ratio is what the
system (JPEG decode, WebSocket, gRPC, Triton, batching) costs on top of the model itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import websockets
from PIL import Image, ImageDraw, ImageFont
from skimage import data as skimage_data

from gpu_host.backend.protocol import pack_frame
from gpu_host.models.spec import ModelSpec, load_processor, model_catalog
from infra.local.ports import free_port
from infra.local.settings import LocalSettings
from infra.local.system import local_system

READY_TIMEOUT_S = 180.0


def bench_frame() -> tuple[Image.Image, bytes]:
    """A 320×240 camera frame with a person (astronaut) and printed words, as RGB and JPEG."""
    image = Image.fromarray(skimage_data.astronaut()).resize((320, 240))
    draw = ImageDraw.Draw(image)
    import matplotlib

    font_path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
    draw.rectangle((170, 190, 318, 236), fill="white")
    draw.text((176, 194), "SPINUP", font=ImageFont.truetype(str(font_path), 30), fill="black")
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=80)
    return image, buf.getvalue()


def run_item(
    session: ort.InferenceSession, tensors: Mapping[str, npt.NDArray[Any]]
) -> dict[str, npt.NDArray[Any]]:
    """One item (no batch axis) through ONNX Runtime: its outputs by name, no batch axis."""
    results = session.run(None, {key: value[np.newaxis] for key, value in tensors.items()})
    return {o.name: r[0] for o, r in zip(session.get_outputs(), results, strict=True)}


def direct_baseline(
    models: list[str], catalog: dict[str, ModelSpec], image: Image.Image, runs: int
) -> dict[str, float]:
    """Median ms of preprocess + ONNX Runtime (1 thread, as local Triton) + postprocess."""
    rgb = np.asarray(image.convert("RGB"))
    out: dict[str, float] = {}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    for name in models:
        spec = catalog[name]
        processor = load_processor(spec)
        session = ort.InferenceSession(str(spec.onnx_path), options)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            tensors, letterbox = processor.preprocess(rgb)
            processor.postprocess(run_item(session, tensors), letterbox)
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = statistics.median(times)
    return out


async def hello(ws: websockets.ClientConnection, ticket: str, models: Sequence[str]) -> None:
    """Say hello and wait for `ready`, through the `loading` notices of models the host loads
    on demand (docs/models.md); anything else ends the benchmark with what the server said."""
    await ws.send(json.dumps({"type": "hello", "ticket": ticket, "models": list(models)}))
    while True:
        message = json.loads(await ws.recv())
        if message.get("type") == "ready":
            return
        if message.get("type") != "notice" or message.get("kind") != "loading":
            raise SystemExit(f"the backend refused the socket: {message}")


async def stream(
    ws_url: str, origin: str, ticket: str, models: list[str], jpeg: bytes, frames: int
) -> tuple[list[float], list[dict[str, Any]]]:
    rtts: list[float] = []
    timings: list[dict[str, Any]] = []
    async with websockets.connect(ws_url, origin=origin, max_size=None) as ws:  # type: ignore[arg-type]
        await hello(ws, ticket, models)
        for frame_id in range(frames):
            t0 = time.perf_counter()
            await ws.send(pack_frame(frame_id, int(time.time() * 1e6), jpeg))
            while True:
                message = json.loads(await ws.recv())
                if message.get("frame_id") == frame_id:
                    break
            assert message["type"] == "result", message
            rtts.append((time.perf_counter() - t0) * 1000)
            timings.append(message["timing_ms"])
    return rtts, timings


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


@dataclass(frozen=True, slots=True)
class RunningSystem:
    """The local system started by `running_system`, with one API session ready."""

    local: LocalSettings
    base: str
    """The UI/API origin, `http://127.0.0.1:<port>`."""
    auth: dict[str, str]
    session_id: str
    phases: dict[str, float]
    """Phase → seconds from Start until first seen."""

    def ticket(self) -> dict[str, Any]:
        """A fresh single-use socket ticket (`ws_url`, `ticket`), as the engine gets one."""
        response = httpx.post(
            f"{self.base}/api/sessions/{self.session_id}/ticket", headers=self.auth
        )
        response.raise_for_status()
        ticket: dict[str, Any] = response.json()
        return ticket


@contextlib.contextmanager
def local_settings(models: list[str]) -> Iterator[LocalSettings]:
    """Local mode on free ports in a fresh run directory, serving `models`; the directory
    (logs, Triton's repository, the host store) is removed on exit."""
    with tempfile.TemporaryDirectory(prefix="spinup-bench-") as run_dir:
        yield LocalSettings(
            ui_port=free_port(),
            backend_port=free_port(),
            triton_http_port=free_port(),
            triton_grpc_port=free_port(),
            triton_metrics_port=free_port(),
            moto_port=free_port(),
            run_dir=Path(run_dir),
            reconcile_interval_s=1.0,
            agent_poll_s=0.25,
            served_models=tuple(models),
        )


@contextlib.contextmanager
def running_system(local: LocalSettings) -> Iterator[RunningSystem]:
    """The whole local system in this process, Start pressed through the API and `ready`;
    the session is released and everything stopped on exit."""
    with local_system(local) as server:
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            while not server.started:
                time.sleep(0.05)
            base = local.ui_origin
            token = httpx.get(f"{base}/config.json").json()["devToken"]
            auth = {"Authorization": f"Bearer {token}"}
            t0 = time.monotonic()
            session = httpx.post(f"{base}/api/sessions", headers=auth).json()
            phases: dict[str, float] = {}
            while True:
                status = httpx.get(f"{base}/api/status", headers=auth).json()
                phases.setdefault(status["phase"], time.monotonic() - t0)
                if status["phase"] == "ready":
                    break
                if time.monotonic() - t0 > READY_TIMEOUT_S:
                    raise SystemExit(f"not ready after {READY_TIMEOUT_S} s: {status}")
                time.sleep(0.1)
            yield RunningSystem(local, base, auth, session["session_id"], phases)
            httpx.delete(f"{base}/api/sessions/{session['session_id']}", headers=auth)
        finally:
            server.should_exit = True
            thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="text", help="comma-separated, served by the host")
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
    models = [m for m in args.models.split(",") if m]

    image, jpeg = bench_frame()
    with local_settings(models) as local, running_system(local) as system:
        phases = system.phases
        # As the engine does: a fresh single-use socket ticket for the connection.
        ticket = system.ticket()
        rtts, timings = asyncio.run(
            stream(ticket["ws_url"], system.base, ticket["ticket"], models, jpeg, args.frames)
        )

    catalog = model_catalog(local.user_models)
    direct = direct_baseline(models, catalog, image, runs=args.frames)
    direct_total = sum(direct.values())
    steady = rtts[5:] or rtts  # the first frames pay for lazy initialisation
    median = statistics.median(steady)
    print(f"models: {','.join(models)}  frames: {len(rtts)}  frame: 320x240 JPEG {len(jpeg)} B")
    print(
        "start → phase first seen (s): "
        + ", ".join(f"{phase} {at:.1f}" for phase, at in phases.items())
    )
    print(
        f"frame round trip (ms): median {median:.1f}  p90 {percentile(steady, 90):.1f}  "
        f"max {max(steady):.1f}"
    )
    for name in models:
        infer = [t.get(f"{name}.infer", 0.0) for t in timings[5:] or timings]
        print(
            f"  {name:<8} direct ORT+pre/post median {direct[name]:.1f} ms   "
            f"via Triton (infer stage) median {statistics.median(infer):.1f} ms"
        )
    print(f"round trip / direct baseline (sum of models): {median / direct_total:.2f}x")


if __name__ == "__main__":
    main()
