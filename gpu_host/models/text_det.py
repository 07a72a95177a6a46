"""Build `zoo/text_det.onnx` from the PP-OCRv4 text detector shipped in `rapidocr-onnxruntime`.

Source: `rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx` in the
`rapidocr-onnxruntime==1.4.4` wheel (Apache-2.0; `pip download --no-deps
rapidocr-onnxruntime==1.4.4`, then unzip). The detector was trained on BGR images normalized
with mean = std = 0.5; the wrapped model takes the spec's uint8 RGB NHWC image instead,
through the same graph edits the zoo converter applies to every other model
(`gpu_host.models.convert.graph`). The source is ONNX already, so no TensorFlow is needed.

    python -m gpu_host.models.text_det SOURCE.onnx [--out gpu_host/models/zoo/text_det.onnx]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

import onnx

from gpu_host.models.convert.graph import (
    Prefix,
    add_uint8_prefix,
    make_batch_dynamic,
    rename_tensors,
)
from gpu_host.models.spec import TEXT, ModelSpec

log = logging.getLogger(__name__)

SOURCE_OUTPUT = "sigmoid_0.tmp_0"
"""The detector's probability map, named after the Paddle op that produced it."""

PADDLE_MEAN_STD = (127.5, 127.5, 127.5)
"""PaddleOCR maps 0..255 to -1..1: (x / 255 - 0.5) / 0.5 == (x - 127.5) / 127.5."""


def build_text_detector(source: onnx.ModelProto, spec: ModelSpec = TEXT) -> onnx.ModelProto:
    """The wheel's detector with the spec's uint8 input and named probability output."""
    (image,) = spec.inputs
    (prob,) = spec.outputs
    height, width, _ = image.dims
    prefix = Prefix(height, width, bgr=True, mean=PADDLE_MEAN_STD, std=PADDLE_MEAN_STD, nchw=True)
    named = rename_tensors(source, {SOURCE_OUTPUT: prob.name})
    # The detector is fully convolutional (no Reshape): a batch dimension is safe.
    wrapped = make_batch_dynamic(add_uint8_prefix(named, prefix, name=image.name))
    onnx.checker.check_model(wrapped)
    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="ch_PP-OCRv4_det_infer.onnx from the wheel")
    parser.add_argument("--out", type=Path, default=TEXT.onnx_path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = build_text_detector(onnx.load(args.source))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    log.info("wrote %s (sha256 %s)", args.out, digest)


if __name__ == "__main__":
    main()
