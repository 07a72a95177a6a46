"""JPEG checks before decoding, and decoding."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from skimage import data as skimage_data

from gpu_host.backend.frames import check_jpeg, dct_reduction, decode_jpeg, jpeg_size
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
    """The decode gives the pixels Pillow gave (the first decoder)."""
    buf = io.BytesIO()
    Image.fromarray(skimage_data.astronaut()).resize((320, 240)).save(buf, "JPEG", quality=80)
    frame = check_jpeg(HEADER, buf.getvalue(), max_pixels=10**6, received_at=0)
    pillow = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert np.abs(decode_jpeg(frame).astype(int) - pillow).max() <= 1


def test_an_unknown_reduction_is_refused(small_jpeg: bytes) -> None:
    frame = check_jpeg(HEADER, small_jpeg, max_pixels=10**6, received_at=0)
    with pytest.raises(ValueError, match="reduction"):
        decode_jpeg(frame, 3)


def _pillow_jpeg(mode: str, size: tuple[int, int], **save: object) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "JPEG", **save)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("jpeg", "size"),
    [
        (_pillow_jpeg("RGB", (320, 240)), (320, 240)),
        (_pillow_jpeg("RGB", (321, 17), progressive=True), (321, 17)),
        (_pillow_jpeg("L", (7, 9000)), (7, 9000)),
        (_pillow_jpeg("CMYK", (65500, 1)), (65500, 1)),
        (_pillow_jpeg("RGB", (64, 48), exif=b"Exif\x00\x00" + bytes(3000)), (64, 48)),
        (_pillow_jpeg("RGB", (64, 48), icc_profile=bytes(70_000)), (64, 48)),
        # Fill bytes (any number of 0xFF) may precede a marker's code.
        (b"\xff\xd8\xff\xff\xff" + _pillow_jpeg("RGB", (10, 20))[3:], (10, 20)),
    ],
    ids=["baseline", "progressive", "gray", "cmyk", "exif", "icc-over-several-app2", "fill"],
)
def test_jpeg_size_reads_what_pillow_reads(jpeg: bytes, size: tuple[int, int]) -> None:
    assert Image.open(io.BytesIO(jpeg)).size == size
    assert jpeg_size(jpeg) == size


SOI = b"\xff\xd8"
APP0 = b"\xff\xe0\x00\x10JFIF\x00" + bytes(9)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (SOI + b"\xff", "before the end"),
        (SOI + APP0, "before the end"),
        (SOI + b"\xff\xe0\x00", "cut off"),
        (SOI + b"\xff\xe0\x00\x01", "length 1"),
        (SOI + APP0 + b"\xff\xda\x00\x08" + bytes(6), "before the scan"),
        (SOI + b"\xff\xd9", "before the scan"),
        (SOI + b"\xff\xe0\x00\x04ab\x00\x00", "no marker after"),
        (SOI + b"\xff\xc0\x00\x11\x08\x00\x00\x01\x40\x03", "0×320|says 320×0"),
        (SOI + b"\xff\xc0\x00\x11\x08\x00", "cut off"),
    ],
    ids=["soi-only", "app-then-end", "length-cut", "length-1", "sos-first", "eoi-first",
         "garbage-after-segment", "zero-height", "sof-cut"],
)  # fmt: skip
def test_jpeg_size_refuses_headers_without_a_readable_frame_header(
    payload: bytes, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        jpeg_size(payload)
    with pytest.raises(BadFrameError, match="unreadable JPEG header"):
        check_jpeg(HEADER, payload, max_pixels=10**7, received_at=0.0)


def test_restart_and_tem_markers_carry_no_length() -> None:
    jpeg = _pillow_jpeg("RGB", (33, 44))
    assert jpeg_size(SOI + b"\xff\xd0\xff\x01" + jpeg[2:]) == (33, 44)


@given(tail=st.binary(max_size=64))
def test_any_bytes_after_soi_give_a_size_or_a_value_error(tail: bytes) -> None:
    """No input makes the header walk fail any other way (an IndexError, a loop)."""
    try:
        width, height = jpeg_size(b"\xff\xd8\xff" + tail)
    except ValueError:
        return
    assert width > 0
    assert height > 0


@pytest.mark.parametrize("reduction", [1, 2, 4, 8])
@pytest.mark.parametrize("progressive", [False, True])
def test_decode_gives_opencvs_pixels_at_every_reduction(reduction: int, progressive: bool) -> None:
    """simplejpeg replaced OpenCV's `imdecode` (twice as fast here): not a pixel changed, so
    neither did any model's input."""
    buf = io.BytesIO()
    photo = Image.fromarray(skimage_data.astronaut()).resize((321, 241))
    photo.save(buf, "JPEG", quality=80, progressive=progressive)
    frame = check_jpeg(HEADER, buf.getvalue(), max_pixels=10**6, received_at=0)
    flags = (
        cv2.IMREAD_COLOR_RGB
        if reduction == 1
        else (getattr(cv2, f"IMREAD_REDUCED_COLOR_{reduction}") & ~cv2.IMREAD_COLOR)
        | cv2.IMREAD_COLOR_RGB
    )
    opencv = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), flags)
    np.testing.assert_array_equal(decode_jpeg(frame, reduction), opencv)
