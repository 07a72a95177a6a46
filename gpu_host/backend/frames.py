"""JPEG checks before decoding, and the decode itself.

Limits are enforced from the JPEG header alone (Pillow's `open` reads markers up to the frame
header; it does not decode pixels), so an oversized or hostile image costs nothing to refuse.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

from gpu_host.backend.protocol import BadFrameError, FrameHeader, FrameTooLargeError
from gpu_host.vision.types import Image

JPEG_SOI = b"\xff\xd8\xff"


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame that passed every check short of decoding."""

    header: FrameHeader
    jpeg: bytes
    width: int
    height: int
    received_at: float
    """Monotonic arrival time, for the `queue` stage of the timing."""


def check_jpeg(header: FrameHeader, jpeg: bytes, *, max_pixels: int, received_at: float) -> Frame:
    """Accept a JPEG by its header: right format, dimensions within `max_pixels`."""
    if not jpeg.startswith(JPEG_SOI):
        raise BadFrameError("payload is not a JPEG (no SOI marker)", frame_id=header.frame_id)
    try:
        with warnings.catch_warnings():
            # Our own limit below is the one that counts; Pillow's is far above it.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(jpeg), formats=["JPEG"]) as image:
                width, height = image.size
    except PILImage.DecompressionBombError as exc:
        raise FrameTooLargeError(str(exc), frame_id=header.frame_id) from exc
    # Pillow reports malformed headers with assorted exception types; all mean "bad frame".
    except Exception as exc:
        raise BadFrameError(f"unreadable JPEG header: {exc}", frame_id=header.frame_id) from exc
    if width * height > max_pixels:
        raise FrameTooLargeError(
            f"{width}×{height} = {width * height} pixels > {max_pixels}", frame_id=header.frame_id
        )
    return Frame(header=header, jpeg=jpeg, width=width, height=height, received_at=received_at)


def decode_jpeg(frame: Frame) -> Image:
    """Decode to H×W×3 RGB uint8, or raise `BadFrameError` (truncated or corrupt data)."""
    try:
        with warnings.catch_warnings():
            # The pixel limit was checked already; Pillow's bomb warning would only repeat it.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(frame.jpeg), formats=["JPEG"]) as image:
                rgb = image.convert("RGB")
    except Exception as exc:  # same reason as in check_jpeg
        raise BadFrameError(f"JPEG does not decode: {exc}", frame_id=frame.header.frame_id) from exc
    return np.asarray(rgb, dtype=np.uint8)
