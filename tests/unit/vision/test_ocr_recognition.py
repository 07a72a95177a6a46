"""PP-OCRv4 recognition (`ocr`) reads rendered strings exactly, given their boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from gpu_host.vision.ocr import OcrProcessor, ctc_greedy, default_processor, load_charset
from gpu_host.vision.types import Box, Image
from tests.unit.vision.harness import Zoo
from tests.unit.vision.photos import DEJAVU_SANS

LINES = (
    "Hello World",
    "Spinup 2026",
    "GPU on demand",
    "ONNX Runtime 1.31",
    "Price: $42.50",
    "QUICK BROWN FOX",
    "a-b_c.d/e",
)
WIDTH, LINE_HEIGHT = 720, 64


Page = tuple[Image, list[Box]]


@pytest.fixture(scope="module")
def page() -> Page:
    """Black DejaVu Sans text on white, one string per line; each line's box (normalized),
    6 pixels of margin around the rendered glyphs."""
    height = LINE_HEIGHT * len(LINES) + 16
    image = PILImage.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(DEJAVU_SANS), 32)
    boxes = []
    for i, line in enumerate(LINES):
        x, y = 16 + 12 * i, 8 + LINE_HEIGHT * i
        left, top, right, bottom = draw.textbbox((x, y), line, font=font)
        draw.text((x, y), line, fill="black", font=font)
        m = 6
        boxes.append(
            ((left - m) / WIDTH, (top - m) / height, (right + m) / WIDTH, (bottom + m) / height)
        )
    return np.asarray(image), boxes


@pytest.fixture(scope="module")
def processor(zoo_dir: Path) -> OcrProcessor:
    return OcrProcessor(load_charset(zoo_dir / "ocr_charset.txt"))


@pytest.mark.parametrize("index", range(len(LINES)))
def test_reads_each_line_exactly(index: int, page: Page, processor: OcrProcessor, zoo: Zoo) -> None:
    image, boxes = page
    tensors, letterbox = processor.preprocess_region(image, boxes[index])
    (outputs,) = zoo.infer("ocr", {"image": tensors["image"][None]})
    (read,) = processor.postprocess(outputs, letterbox).texts
    assert read.text == LINES[index]
    assert read.score > 0.9
    assert read.box == pytest.approx(boxes[index], abs=2 / WIDTH)


def test_reads_a_batch_of_lines(page: Page, processor: OcrProcessor, zoo: Zoo) -> None:
    """All lines of the page as one batch of fixed-width items, as Triton would batch them."""
    image, boxes = page
    items = [processor.preprocess_region(image, box) for box in boxes]
    batch = {"image": np.stack([tensors["image"] for tensors, _ in items])}
    outputs = zoo.infer("ocr", batch)
    texts = [
        processor.postprocess(o, lb).texts[0].text
        for o, (_, lb) in zip(outputs, items, strict=True)
    ]
    assert texts == list(LINES)


def test_a_blank_region_reads_nothing(processor: OcrProcessor, zoo: Zoo) -> None:
    tensors, letterbox = processor.preprocess(np.full((48, 200, 3), 255, np.uint8))
    (outputs,) = zoo.infer("ocr", {"image": tensors["image"][None]})
    assert processor.postprocess(outputs, letterbox).texts == ()


def test_ctc_drops_repeats_and_blanks() -> None:
    classes = ("", "a", "b", " ")
    steps = [1, 1, 0, 1, 2, 2, 0, 0, 3, 2]  # a a _ a b b _ _ ␠ b
    probs = np.full((len(steps), 4), 0.1, np.float32)
    probs[np.arange(len(steps)), steps] = 0.7
    text, score = ctc_greedy(probs, classes)
    assert text == "aab b"
    assert score == pytest.approx(0.7)


def test_the_charset_matches_the_model(zoo: Zoo) -> None:
    """6623 dictionary lines + the CTC blank + a space = the model's 6625 classes."""
    classes = zoo.session("ocr").get_outputs()[0].shape[-1]
    assert len(default_processor().classes) == classes == 6625


@pytest.mark.parametrize(
    "box",
    [(0.5, 0.1, 0.4, 0.2), (0.0, 0.0, 1.2, 1.0), (-0.1, 0.0, 0.5, 0.5), (0.2, 0.3, 0.4, 0.3)],
)
def test_bad_regions_are_refused(box: Box, processor: OcrProcessor) -> None:
    with pytest.raises(ValueError, match="not a normalized"):
        processor.preprocess_region(np.zeros((10, 10, 3), np.uint8), box)


def test_an_empty_charset_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="charset is empty"):
        OcrProcessor(load_charset(tmp_path / "empty.txt"))
