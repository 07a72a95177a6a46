"""Motion gating: Farneback optical flow against a down-scaled frame difference.

    python -m bench.motion [--frames 120] [--repeat 3]

Two 640×480 clips are made from a committed photograph (gpu_host/models/verify/samples):

- static: the same view every frame, with fresh sensor-like noise (Gaussian, σ 3 gray
  levels) and a JPEG round trip (quality 80, as the engine sends), so no two frames are equal;
- moving: the same photograph panning 4 px per frame, with the same noise and JPEG;
- slow pan: 1 px per frame (how far a view may drift before the gate infers again).

Each gate compares a frame with the last frame it let through to inference (as the backend
does) and says reuse or infer:

- difference: `gpu_host.backend.motion` (40×30 grayscale, mean absolute difference, below
  `--diff-threshold` gray levels: reuse);
- flow: OpenCV's `calcOpticalFlowFarneback` on the 320×240 grayscale frame (the seed's
  "optional motion estimation"), mean flow magnitude below `--flow-threshold` px: reuse.

It prints, per gate, the ms per frame (median of `--repeat` runs over the clip, from the
decoded RGB frame to the decision, the thumbnail or grayscale conversion included) and the
share of frames each clip saves; then the ratio of the two costs. CPU only, one thread
(the backend sets `cv2.setNumThreads(1)`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from gpu_host.backend.motion import DEFAULT_THRESHOLD, frame_difference, thumbnail

PHOTO = Path(__file__).resolve().parents[1] / "gpu_host/models/verify/samples/astronaut.jpg"
FRAME_WH = (640, 480)
FLOW_WH = (320, 240)
PAN_PX = 4

Frame = npt.NDArray[Any]
NEW_FLOW = cast(Any, None)
"""OpenCV allocates the flow itself (its stubs do not say None is allowed)."""
Gate = Callable[[list[Frame]], list[bool]]


def _jpeg_round_trip(image: Frame, rng: np.random.Generator) -> Frame:
    noisy = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return cast(Frame, cv2.imdecode(data, cv2.IMREAD_COLOR_RGB))


def make_clips(frames: int) -> dict[str, list[Frame]]:
    rng = np.random.default_rng(11)
    photo = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR_RGB)
    if photo is None:
        raise FileNotFoundError(PHOTO)
    width, height = FRAME_WH
    # Wide enough to pan PAN_PX a frame for the whole clip without leaving the photograph.
    wide = cv2.resize(photo, (width + PAN_PX * frames, height + PAN_PX * frames))
    static = [_jpeg_round_trip(wide[:height, :width], rng) for _ in range(frames)]
    moving = [
        _jpeg_round_trip(wide[:height, i * PAN_PX : i * PAN_PX + width], rng) for i in range(frames)
    ]
    slow = [_jpeg_round_trip(wide[:height, i : i + width], rng) for i in range(frames)]
    return {"static": static, "moving": moving, "slow pan": slow}


def difference_gate(threshold: float) -> Gate:
    def run(clip: list[Frame]) -> list[bool]:
        reference = None
        reused = []
        for frame in clip:
            current = thumbnail(frame)
            reuse = reference is not None and frame_difference(reference, current) < threshold
            if not reuse:
                reference = current
            reused.append(reuse)
        return reused

    return run


def flow_gate(threshold_px: float) -> Gate:
    def run(clip: list[Frame]) -> list[bool]:
        reference = None
        reused = []
        for frame in clip:
            small = cv2.resize(frame, FLOW_WH, interpolation=cv2.INTER_AREA)
            gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
            reuse = False
            if reference is not None:
                flow = cv2.calcOpticalFlowFarneback(
                    reference, gray, NEW_FLOW, 0.5, 3, 15, 3, 5, 1.2, 0
                )
                reuse = float(np.linalg.norm(flow, axis=2).mean()) < threshold_px
            if not reuse:
                reference = gray
            reused.append(reuse)
        return reused

    return run


def measure(gate: Gate, clip: list[Frame], repeat: int) -> tuple[float, float]:
    """(ms per frame, median of `repeat` runs; share of frames reused)."""
    times = []
    reused: list[bool] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        reused = gate(clip)
        times.append((time.perf_counter() - t0) * 1000 / len(clip))
    return statistics.median(times), sum(reused) / len(reused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--diff-threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--flow-threshold", type=float, default=0.5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    clips = make_clips(args.frames)
    gates = {
        f"difference 40x30 (< {args.diff_threshold} levels)": difference_gate(args.diff_threshold),
        f"farneback 320x240 (< {args.flow_threshold} px)": flow_gate(args.flow_threshold),
    }
    cost: dict[str, float] = {}
    print(f"{args.frames} frames of {FRAME_WH[0]}x{FRAME_WH[1]} per clip, pan {PAN_PX} px/frame")
    print(f"{'gate':40} {'ms/frame':>9}" + "".join(f" {c + ' saved':>16}" for c in clips))
    for name, gate in gates.items():
        measured = [measure(gate, clip, args.repeat) for clip in clips.values()]
        cost[name] = statistics.mean(ms for ms, _ in measured)
        saved = "".join(f" {share:16.0%}" for _, share in measured)
        print(f"{name:40} {cost[name]:9.3f}{saved}")
    diff_ms, flow_ms = cost.values()
    print(f"farneback / difference: {flow_ms / diff_ms:.0f}x the cost per frame")
    for name, clip in clips.items():
        diffs = [round(frame_difference(thumbnail(clip[0]), thumbnail(f)), 2) for f in clip[1:4]]
        print(f"{name}: difference to the first frame, frames 1-3: {diffs} levels")


if __name__ == "__main__":
    main()
