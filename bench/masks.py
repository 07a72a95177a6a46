"""Masks on the socket: run lengths, polygons or a 1-bit PNG, by bytes and by cost.

    python -m bench.masks [--repeat 2000]

Two results made of synthetic, deterministic masks (no model needed):

- person: one whole-frame 64×48 mask (box 0, 0, 1, 1) of a person-shaped blob (head, torso,
  arms and legs drawn as ellipses and thick lines), what the stock `segment` model sends;
- instances: three 40×60 instance masks in their boxes (ellipses with a notch and a hole),
  what a YOLO segment export sends beside its detections.

Candidates, each as the `masks` list of a result (JSON as the backend sends it, compact):

- rle: run lengths of the row-major bitmap as a JSON int list (gpu_host/backend/masks.py);
- rle-b64: the same run lengths as LEB128 varints, base64;
- polygon: OpenCV findContours + approxPolyDP (epsilon 0.5 cell), the points normalized to the
  box and rounded to 1e-3, as flat JSON lists (lossy: the cells it gets wrong are printed);
- png: a 1-bit PNG (Pillow, optimize), base64.

It prints bytes per result and the Python encode µs per mask (median of `--repeat`), then runs
bench/masks_decode.mjs in node for the engine's side: µs per mask from the parsed JSON to what
the renderer hands the canvas (RGBA pixels for an ImageData, or the polygon's canvas points).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from gpu_host.backend.masks import decode_mask, encode_mask, run_lengths
from gpu_host.vision.types import Mask

DECODER = Path(__file__).with_name("masks_decode.mjs")
Bitmap = npt.NDArray[np.bool_]
Encoder = Callable[[Mask], dict[str, Any]]


def person(w: int = 64, h: int = 48) -> Bitmap:
    """A person standing in the middle of a 4:3 frame, waist up to the knees."""
    canvas = np.zeros((h, w), np.uint8)
    cx = w // 2
    cv2.ellipse(canvas, (cx, h // 6), (w // 16, h // 9), 0, 0, 360, 1, -1)  # head
    cv2.ellipse(canvas, (cx, h // 2), (w // 8, h // 4), 0, 0, 360, 1, -1)  # torso
    cv2.line(canvas, (cx - w // 9, h // 3), (cx - w // 4, h * 2 // 3), 1, max(2, w // 20))  # arms
    cv2.line(canvas, (cx + w // 9, h // 3), (cx + w // 5, h // 2), 1, max(2, w // 20))
    cv2.line(canvas, (cx + w // 5, h // 2), (cx + w // 4, h // 3), 1, max(2, w // 20))
    cv2.line(canvas, (cx - w // 20, h * 2 // 3), (cx - w // 12, h - 1), 1, max(2, w // 16))  # legs
    cv2.line(canvas, (cx + w // 20, h * 2 // 3), (cx + w // 12, h - 1), 1, max(2, w // 16))
    return canvas.astype(bool)


def instance(seed: int, w: int = 40, h: int = 60) -> Bitmap:
    """An upright blob filling most of its box, with a notch and a hole, varied by `seed`."""
    canvas = np.zeros((h, w), np.uint8)
    cv2.ellipse(canvas, (w // 2, h // 2), (w // 2 - 2, h // 2 - 3), seed * 7, 0, 360, 1, -1)
    cv2.circle(canvas, (w - 4, h // 3 + seed * 5), w // 6, 0, -1)
    cv2.circle(canvas, (w // 2 - seed, h * 2 // 3), 2 + seed, 0, -1)
    return canvas.astype(bool)


def results() -> dict[str, list[Mask]]:
    boxes = [(0.05, 0.1, 0.2, 0.5), (0.4, 0.3, 0.55, 0.75), (0.7, 0.2, 0.85, 0.6)]
    return {
        "person 64x48": [Mask("segment", "person", 1.0, (0.0, 0.0, 1.0, 1.0), person())],
        "3 instances 40x60": [
            Mask("nails", "nail", 0.9, box, instance(i)) for i, box in enumerate(boxes)
        ],
    }


def _head(mask: Mask) -> dict[str, Any]:
    return {"model": mask.model, "label": mask.label, "score": mask.score, "box": list(mask.box)}


def _varints(values: list[int]) -> bytes:
    out = bytearray()
    for value in values:
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def rle_b64(mask: Mask) -> dict[str, Any]:
    h, w = mask.bitmap.shape
    counts = _varints(run_lengths(mask.bitmap))
    return {**_head(mask), "size": [w, h], "rle64": base64.b64encode(counts).decode()}


def polygon(mask: Mask) -> dict[str, Any]:
    h, w = mask.bitmap.shape
    contours, _ = cv2.findContours(
        mask.bitmap.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    polygons = []
    for contour in contours:
        simple = cv2.approxPolyDP(contour, 0.5, True).reshape(-1, 2)
        # Cell centres, normalized to the box.
        points = (simple + 0.5) / np.array([w, h])
        polygons.append(np.round(points, 3).ravel().tolist())
    return {**_head(mask), "polygons": polygons}


def png(mask: Mask) -> dict[str, Any]:
    buffer = io.BytesIO()
    Image.fromarray(mask.bitmap).convert("1").save(buffer, format="PNG", optimize=True)
    return {**_head(mask), "png": base64.b64encode(buffer.getvalue()).decode()}


ENCODERS: dict[str, Encoder] = {
    "rle": encode_mask,
    "rle-b64": rle_b64,
    "polygon": polygon,
    "png": png,
}


def polygon_cells_wrong(mask: Mask, wire: dict[str, Any]) -> int:
    """How many cells the polygon gets wrong when filled back at the mask's size."""
    h, w = mask.bitmap.shape
    filled = np.zeros((h, w), np.uint8)
    for flat in wire["polygons"]:
        points = np.array(flat).reshape(-1, 2) * np.array([w, h]) - 0.5
        # Even-odd fill over all rings, so holes (RETR_CCOMP's inner contours) stay open.
        ring = np.zeros((h, w), np.uint8)
        cv2.fillPoly(ring, [np.round(points).astype(np.int32)], 1)
        filled ^= ring
    return int((filled.astype(bool) != mask.bitmap).sum())


def encode_us(encoder: Encoder, masks: list[Mask], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for mask in masks:
            encoder(mask)
        times.append((time.perf_counter() - t0) * 1e6 / len(masks))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    cases = results()
    wire: dict[str, dict[str, list[dict[str, Any]]]] = {}
    print(f"{'result':20} {'encoding':9} {'bytes':>6} {'encode µs/mask':>15}  notes")
    for case, masks in cases.items():
        wire[case] = {}
        for name, encoder in ENCODERS.items():
            encoded = [encoder(mask) for mask in masks]
            wire[case][name] = encoded
            size = len(json.dumps(encoded, separators=(",", ":")))
            note = ""
            if name == "rle":
                assert all(
                    np.array_equal(decode_mask(e).bitmap, m.bitmap)
                    for e, m in zip(encoded, masks, strict=True)
                )
                note = "exact"
            elif name == "polygon":
                wrong = sum(polygon_cells_wrong(m, e) for m, e in zip(masks, encoded, strict=True))
                cells = sum(m.bitmap.size for m in masks)
                points = sum(len(p) // 2 for e in encoded for p in e["polygons"])
                note = f"{points} points; {wrong} of {cells} cells wrong"
            us = encode_us(encoder, masks, args.repeat)
            print(f"{case:20} {name:9} {size:6d} {us:15.1f}  {note}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "masks.json"
        path.write_text(json.dumps(wire), encoding="utf-8")
        subprocess.run(["node", str(DECODER), str(path), str(args.repeat)], check=True)


if __name__ == "__main__":
    main()
