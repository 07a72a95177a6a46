"""Build `zoo/text_det.onnx` from the PP-OCRv4 text detector shipped in `rapidocr-onnxruntime`.

Source: `rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx` in the
`rapidocr-onnxruntime==1.4.4` wheel (Apache-2.0; `pip download --no-deps
rapidocr-onnxruntime==1.4.4`, then unzip). The detector was trained on BGR images normalized
with mean = std = 0.5; the wrapped model takes the spec's uint8 RGB NHWC image instead.

    python -m gpu_host.models.text_det SOURCE.onnx [--out gpu_host/models/zoo/text_det.onnx]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

import onnx

from gpu_host.models.image_input import prepend_uint8_image_input, rename_outputs
from gpu_host.models.spec import TEXT, ModelSpec

log = logging.getLogger(__name__)

SOURCE_OUTPUT = "sigmoid_0.tmp_0"
"""The detector's probability map, named after the Paddle op that produced it."""


def build_text_detector(source: onnx.ModelProto, spec: ModelSpec = TEXT) -> onnx.ModelProto:
    """The wheel's detector with the spec's uint8 input and named probability output."""
    (image,) = spec.inputs
    (prob,) = spec.outputs
    height, width, _ = image.dims
    wrapped = prepend_uint8_image_input(
        source,
        input_name=image.name,
        height=height,
        width=width,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        layout="NCHW",
        bgr=True,
    )
    return rename_outputs(wrapped, {SOURCE_OUTPUT: prob.name})


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
