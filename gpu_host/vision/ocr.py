"""Text recognition with PP-OCRv4 (CTC): text regions in, strings out.

Each region (a box from the `text` detector, or the whole frame) becomes one item: cropped,
resized to the model's height keeping its aspect ratio (squeezed only when wider than
`width`), and right-padded to a fixed width so that items from any frames batch together.
The output is a softmax per time step; greedy CTC decoding drops repeats and blanks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from gpu_host.vision.letterbox import check_image
from gpu_host.vision.tensors import output
from gpu_host.vision.types import Box, Image, Letterbox, ModelOutput, Tensors, TextRead

MODEL = "ocr"
PAD = 127
"""Grey padding: 0 after the graph's (x - 127.5) / 127.5, as PaddleOCR pads."""


@dataclass(frozen=True, slots=True)
class OcrParams:
    min_score: float = 0.5
    """Mean character probability below which a read is dropped."""


def load_charset(path: Path) -> tuple[str, ...]:
    """The recognizer's dictionary: one character a line (as PP-OCR ships it)."""
    return tuple(path.read_text(encoding="utf-8").splitlines())


class OcrProcessor:
    """`Processor` for the `ocr` model: one text line per item."""

    model = MODEL

    def __init__(
        self,
        charset: Sequence[str],
        *,
        height: int = 48,
        width: int = 320,
        params: OcrParams | None = None,
    ) -> None:
        if not charset:
            raise ValueError("ocr: the charset is empty")
        # Class 0 is the CTC blank; PP-OCR appends a space after the dictionary.
        self.classes: tuple[str, ...] = ("", *charset, " ")
        self.height = height
        self.width = width
        self.params = params or OcrParams()

    def preprocess(self, image: Image) -> tuple[dict[str, npt.NDArray[Any]], Letterbox]:
        """The whole frame as one text line."""
        return self.preprocess_region(image, (0.0, 0.0, 1.0, 1.0))

    def preprocess_region(
        self, image: Image, box: Box
    ) -> tuple[dict[str, npt.NDArray[Any]], Letterbox]:
        """One text region (normalized x1, y1, x2, y2 of the frame) as one item."""
        check_image(image)
        src_h, src_w = image.shape[:2]
        x1, y1, x2, y2 = _pixels(box, src_w, src_h)
        crop = image[y1:y2, x1:x2]
        scale = self.height / crop.shape[0]
        new_w = min(self.width, max(1, math.ceil(crop.shape[1] * scale)))
        resized = cv2.resize(crop, (new_w, self.height), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((self.height, self.width, 3), PAD, dtype=np.uint8)
        canvas[:, :new_w] = resized
        # Maps crop pixels back to the frame; the region itself travels in `extra`.
        letterbox = Letterbox(
            scale=scale,
            pad_x=-x1 * scale,
            pad_y=-y1 * scale,
            src_w=src_w,
            src_h=src_h,
            extra={"box": (x1 / src_w, y1 / src_h, x2 / src_w, y2 / src_h)},
        )
        return {"image": canvas}, letterbox

    def postprocess(self, outputs: Tensors, letterbox: Letterbox) -> ModelOutput:
        probs = output(MODEL, outputs, "probs", (None, len(self.classes)))
        text, score = ctc_greedy(probs, self.classes)
        text = text.strip()
        if not text or score < self.params.min_score:
            return ModelOutput()
        box: Box = letterbox.extra.get("box", (0.0, 0.0, 1.0, 1.0))
        return ModelOutput(texts=(TextRead(MODEL, text, box, score),))


def ctc_greedy(probs: npt.NDArray[np.float32], classes: Sequence[str]) -> tuple[str, float]:
    """Best class per step; drop repeats, then blanks (class 0). Score: mean kept prob."""
    best = probs.argmax(axis=1)
    best_p = probs.max(axis=1)
    keep = best != 0
    keep[1:] &= best[1:] != best[:-1]
    if not keep.any():
        return "", 0.0
    return "".join(classes[i] for i in best[keep]), float(best_p[keep].mean())


def _pixels(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        raise ValueError(f"ocr: region {box} is not a normalized x1 < x2, y1 < y2 box")
    px1, py1 = math.floor(x1 * width), math.floor(y1 * height)
    px2, py2 = max(px1 + 1, math.ceil(x2 * width)), max(py1 + 1, math.ceil(y2 * height))
    return px1, py1, min(px2, width), min(py2, height)


def default_processor() -> OcrProcessor:
    """The factory the model spec names: the charset committed beside `ocr.onnx`."""
    from gpu_host.models.spec import ZOO_DIR

    return OcrProcessor(load_charset(ZOO_DIR / "ocr_charset.txt"))
