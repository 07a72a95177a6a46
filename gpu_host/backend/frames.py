"""JPEG checks before decoding, and the decode itself (at a reduced size where it fits).

Limits are enforced from the JPEG header alone (`jpeg_size` walks the markers up to the frame
header; it decodes no pixels), so an oversized or hostile image costs nothing to refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import simplejpeg

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


def jpeg_size(jpeg: bytes) -> tuple[int, int]:
    """Width and height from a JPEG's frame header (SOFn), walking the marker segments after
    SOI; raises `ValueError` when there is none before the scan, or the data ends first.
    (Pillow's `open` read the same and cost 5–10× as much: a Python object per segment.)
    Markers: ITU-T T.81, B.1.1.2–B.2.2."""
    pos = len(JPEG_SOI) - 1  # at the first marker's 0xFF
    end = len(jpeg)
    while True:
        while pos < end and jpeg[pos] == 0xFF:  # a marker and any fill bytes before its code
            pos += 1
        if pos >= end:
            raise ValueError("no frame header before the end of the data")
        marker = jpeg[pos]
        pos += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker in (_SOS, _EOI):
            raise ValueError("no frame header before the scan")
        if pos + 2 > end:
            raise ValueError(f"marker 0x{marker:02X} cut off")
        length = int.from_bytes(jpeg[pos : pos + 2], "big")
        if length < 2:
            raise ValueError(f"marker 0x{marker:02X} has length {length}")
        if marker in _SOF_MARKERS:
            if length < 8 or pos + 7 > end:
                raise ValueError("frame header cut off")
            height = int.from_bytes(jpeg[pos + 3 : pos + 5], "big")
            width = int.from_bytes(jpeg[pos + 5 : pos + 7], "big")
            if width == 0 or height == 0:
                raise ValueError(f"frame header says {width}×{height}")
            return width, height
        pos += length
        if pos < end and jpeg[pos] != 0xFF:
            raise ValueError(f"no marker after segment 0x{marker:02X}")


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""Start-of-frame markers (baseline, extended, progressive, lossless…); 0xC4 (DHT), 0xC8
(JPG) and 0xCC (DAC) share the range and are not frame headers."""
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
"""TEM and RST0–7: markers with no length field."""
_SOS, _EOI = 0xDA, 0xD9


def check_jpeg(header: FrameHeader, jpeg: bytes, *, max_pixels: int, received_at: float) -> Frame:
    """Accept a JPEG by its header: right format, dimensions within `max_pixels`."""
    if not jpeg.startswith(JPEG_SOI):
        raise BadFrameError("payload is not a JPEG (no SOI marker)", frame_id=header.frame_id)
    try:
        width, height = jpeg_size(jpeg)
    except ValueError as exc:
        raise BadFrameError(f"unreadable JPEG header: {exc}", frame_id=header.frame_id) from exc
    if width * height > max_pixels:
        raise FrameTooLargeError(
            f"{width}×{height} = {width * height} pixels > {max_pixels}", frame_id=header.frame_id
        )
    return Frame(header=header, jpeg=jpeg, width=width, height=height, received_at=received_at)


DCT_REDUCTIONS = (8, 4, 2)
"""The factors libjpeg can decode at directly, by scaling its inverse DCT."""


def dct_reduction(scale: float) -> int:
    """The largest factor a frame can be decoded smaller by when the models shrink it by at
    most `scale` (< 1: every model's input is smaller than the frame): the decoded image is
    still at least as large as what any model's letterbox resizes it to."""
    return next((n for n in DCT_REDUCTIONS if n * scale <= 1.0), 1)


def decode_jpeg(frame: Frame, reduction: int = 1) -> Image:
    """Decode to H×W×3 RGB uint8, `reduction` (1, 2, 4 or 8) times smaller on each side
    (rounded up), or raise `BadFrameError` (truncated or corrupt data).

    simplejpeg's libjpeg-turbo decodes straight to RGB, with libjpeg's DCT scaling for a
    reduced size: the same pixels as OpenCV's `imdecode` (and Pillow) at every reduction,
    in 0.34 ms instead of OpenCV's 0.62 for a full 320×240 frame here (0.27 against 0.30 at
    half size). A reduced decode skips most of the inverse DCT and the resize that would
    follow it."""
    if reduction != 1 and reduction not in DCT_REDUCTIONS:
        raise ValueError(f"reduction must be one of 1, {DCT_REDUCTIONS}, got {reduction}")
    try:
        # The smallest of libjpeg's M/8 scales that covers these is exactly 1/reduction.
        image = simplejpeg.decode_jpeg(
            frame.jpeg,
            colorspace="RGB",
            min_height=-(-frame.height // reduction),
            min_width=-(-frame.width // reduction),
        )
    except ValueError as exc:  # truncated or corrupt data (libjpeg's warnings count)
        raise BadFrameError(f"JPEG does not decode: {exc}", frame_id=frame.header.frame_id) from exc
    return cast(Image, image)
