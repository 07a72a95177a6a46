"""Frames for the motion gate's tests: a seeded textured view, with fresh noise per frame
(as a camera gives), shifted to make motion."""

from __future__ import annotations

import time
from typing import cast

import cv2
import numpy as np

from gpu_host.backend.frames import Frame, check_jpeg
from gpu_host.backend.protocol import FrameHeader
from gpu_host.vision.types import Image

WIDTH, HEIGHT = 640, 480


def scene(seed: int = 7) -> Image:
    """A wide view of smooth blobs (like a photograph, unlike white noise), 3 channels."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (HEIGHT // 32, 2 * WIDTH // 32, 3), dtype=np.uint8)
    return cast(Image, cv2.resize(coarse, (2 * WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC))


def view(shift_px: int = 0, *, noise_seed: int = 0, sigma: float = 3.0) -> Image:
    """The scene seen `shift_px` to the right, with Gaussian sensor noise."""
    rng = np.random.default_rng(noise_seed)
    window = scene()[:, shift_px : shift_px + WIDTH].astype(np.float64)
    noisy = np.clip(window + rng.normal(0, sigma, window.shape), 0, 255).astype(np.uint8)
    out: Image = noisy
    return out


def jpeg_frame(image: Image, frame_id: int = 1) -> Frame:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    header = FrameHeader(frame_id, frame_id * 1000)
    return check_jpeg(header, data.tobytes(), max_pixels=10**7, received_at=time.monotonic())
