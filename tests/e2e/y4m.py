"""Y4M writer for Chromium's fake camera (`--use-file-for-fake-video-capture`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def write_y4m(path: Path, frames: Sequence[Image.Image], *, fps: int = 30) -> Path:
    """Write RGB frames (all the same even size) as a 4:2:0 Y4M file."""
    width, height = frames[0].size
    if width % 2 or height % 2:
        raise ValueError(f"Y4M 4:2:0 needs even dimensions, got {width}x{height}")
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            if frame.size != (width, height):
                raise ValueError("all frames must have the same size")
            ycbcr = np.asarray(frame.convert("RGB").convert("YCbCr"))
            y = ycbcr[:, :, 0]
            # 4:2:0: one chroma sample per 2×2 block, averaged.
            cb = ycbcr[:, :, 1].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
            cr = ycbcr[:, :, 2].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
            out.write(b"FRAME\n")
            out.write(y.astype(np.uint8).tobytes())
            out.write(np.round(cb).astype(np.uint8).tobytes())
            out.write(np.round(cr).astype(np.uint8).tobytes())
    return path
