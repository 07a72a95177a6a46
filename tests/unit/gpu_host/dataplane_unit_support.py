"""Helpers for the data plane's unit tests (fixtures are in conftest.py, which is not
importable by name)."""

from __future__ import annotations

import io

from PIL import Image


class FakeClock:
    """A clock the test moves by hand (time is an input of the pure state machines)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def jpeg_bytes(width: int = 64, height: int = 48, color: str = "white") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "JPEG")
    return buf.getvalue()
