"""Rebuild the verification samples in `samples/` (needs the dev dependencies).

    python -m gpu_host.models.verify.make_samples

Two photographs the accuracy tests use (tests/unit/vision/photos.py), as shipped inside the
scikit-image wheel, and two printed pages rendered with DejaVu Sans as shipped inside the
matplotlib wheel: a person with a face (detect, pose, face), an object (detect), a page of
text lines (text) and one line (ocr). Every model sees every sample, so each output is also
compared on inputs it was not made for — where an FP16 engine drifts, it drifts everywhere.
Committed, so the verification downloads nothing and needs neither package on the host.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import skimage
from PIL import Image, ImageDraw, ImageFont

from gpu_host.models.verify.samples import SAMPLES_DIR

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"
DEJAVU_SANS = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"

PHOTOS = {"astronaut": SKIMAGE_DATA / "astronaut.png", "coffee": SKIMAGE_DATA / "coffee.png"}
PAGE_LINES = ("SPINUP 2026", "Triton on a GPU", "exit 0 when it holds")
LINE = "TensorRT FP16"


def render(lines: tuple[str, ...], size: tuple[int, int], font_px: int) -> Image.Image:
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(DEJAVU_SANS), font_px)
    for i, line in enumerate(lines):
        draw.text((20, 12 + int(font_px * 2.5) * i), line, fill="black", font=font)
    return page


def main() -> None:
    SAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for name, source in PHOTOS.items():
        Image.open(source).convert("RGB").save(SAMPLES_DIR / f"{name}.jpg", quality=90)
    render(PAGE_LINES, (640, 480), 36).save(SAMPLES_DIR / "page.png")
    render((LINE,), (400, 64), 36).save(SAMPLES_DIR / "line.png")


if __name__ == "__main__":
    main()
