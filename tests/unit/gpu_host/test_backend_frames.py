"""JPEG checks before decoding, and decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from gpu_host.backend.frames import check_jpeg, dct_reduction, decode_jpeg
from gpu_host.backend.protocol import BadFrameError, FrameHeader, FrameTooLargeError
from tests.unit.gpu_host.dataplane_unit_support import jpeg_bytes

HEADER = FrameHeader(frame_id=9, capture_us=1)


def with_dimensions(jpeg: bytes, width: int, height: int) -> bytes:
    """Rewrite the SOF0 marker's size fields: a header that lies about the image size."""
    sof = jpeg.index(b"\xff\xc0")
    data = bytearray(jpeg)
    data[sof + 5 : sof + 7] = height.to_bytes(2, "big")
    data[sof + 7 : sof + 9] = width.to_bytes(2, "big")
    return bytes(data)


def test_accepts_a_jpeg_and_reads_its_size_from_the_header(small_jpeg: bytes) -> None:
    frame = check_jpeg(HEADER, small_jpeg, max_pixels=64 * 48, received_at=0.0)
    assert (frame.width, frame.height) == (64, 48)


def test_pixel_limit_is_checked_from_the_header_without_decoding(small_jpeg: bytes) -> None:
    """Given a header claiming 60000×60000 over 64×48 worth of data, the check refuses it
    as too large — decoding would have failed differently (truncated)."""
    bomb = with_dimensions(small_jpeg, 60000, 60000)
    with pytest.raises(FrameTooLargeError) as caught:
        check_jpeg(HEADER, bomb, max_pixels=1920 * 1080, received_at=0.0)
    assert caught.value.frame_id == 9


def test_pixel_limit_is_ours_not_pillows(small_jpeg: bytes) -> None:
    lying = with_dimensions(small_jpeg, 4000, 3000)
    with pytest.raises(FrameTooLargeError, match="4000×3000 = 12000000 pixels > 2073600"):
        check_jpeg(HEADER, lying, max_pixels=1920 * 1080, received_at=0.0)


@pytest.mark.parametrize(
    "payload",
    [
        b"hello, not a jpeg",
        b"\x89PNG\r\n\x1a\n" + bytes(32),
        b"\xff\xd8\xff" + bytes(5),
        b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + bytes(50),
    ],
)
def test_non_jpeg_or_unreadable_header_is_a_bad_frame(payload: bytes) -> None:
    with pytest.raises(BadFrameError) as caught:
        check_jpeg(HEADER, payload, max_pixels=10**7, received_at=0.0)
    assert caught.value.frame_id == 9


def test_png_is_refused_even_though_pillow_could_read_it() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    with pytest.raises(BadFrameError, match="not a JPEG"):
        check_jpeg(HEADER, buf.getvalue(), max_pixels=10**7, received_at=0.0)


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_decodes_to_rgb_uint8(mode: str) -> None:
    buf = io.BytesIO()
    Image.new(mode, (20, 10)).save(buf, "JPEG")
    frame = check_jpeg(HEADER, buf.getvalue(), max_pixels=200, received_at=0.0)
    image = decode_jpeg(frame)
    assert image.shape == (10, 20, 3)
    assert image.dtype == np.uint8


def test_truncated_jpeg_passes_the_header_check_but_fails_decoding() -> None:
    jpeg = jpeg_bytes(320, 240, "red")
    frame = check_jpeg(HEADER, jpeg[: len(jpeg) // 2], max_pixels=10**6, received_at=0.0)
    with pytest.raises(BadFrameError, match="does not decode"):
        decode_jpeg(frame)


@pytest.mark.parametrize(
    ("scale", "reduction"),
    [(1.5, 1), (1.0, 1), (0.6, 1), (0.5, 2), (0.4, 2), (0.25, 4), (0.2, 4), (0.125, 8), (0.05, 8)],
)
def test_dct_reduction_keeps_the_decoded_frame_at_least_as_large_as_the_models_need(
    scale: float, reduction: int
) -> None:
    assert dct_reduction(scale) == reduction


@pytest.mark.parametrize(("width", "height"), [(320, 240), (321, 241)])
@pytest.mark.parametrize("reduction", [1, 2, 4, 8])
def test_reduced_decode_is_the_frame_smaller_rounded_up(
    width: int, height: int, reduction: int
) -> None:
    frame = check_jpeg(HEADER, jpeg_bytes(width, height, "red"), max_pixels=10**6, received_at=0)
    image = decode_jpeg(frame, reduction)
    assert image.shape == (-(-height // reduction), -(-width // reduction), 3)
    assert image.dtype == np.uint8
    assert image[0, 0].tolist() == pytest.approx([254, 0, 0], abs=2), "RGB, not BGR"


def test_decode_matches_pillow_on_a_photograph() -> None:
    """OpenCV's libjpeg-turbo gives the pixels Pillow gave (the decoder it replaced)."""
    buf = io.BytesIO()
    Image.fromarray(skimage_data.astronaut()).resize((320, 240)).save(buf, "JPEG", quality=80)
    frame = check_jpeg(HEADER, buf.getvalue(), max_pixels=10**6, received_at=0)
    pillow = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert np.abs(decode_jpeg(frame).astype(int) - pillow).max() <= 1


def test_an_unknown_reduction_is_refused(small_jpeg: bytes) -> None:
    frame = check_jpeg(HEADER, small_jpeg, max_pixels=10**6, received_at=0)
    with pytest.raises(ValueError, match="reduction"):
        decode_jpeg(frame, 3)
