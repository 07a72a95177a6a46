"""Models added with `python -m gpu_host.models add`, served end to end by the real local
Triton and the backend: a detect, a segment and a pose export with a fixed batch of 1 (made
dynamic by `add`), and a detect export whose graph cannot take a batch (served unbatched).

Plumbing, not accuracy: the exports are random-weight graphs whose outputs are known
(tests/unit/models/yolo_exports.py), so each test knows what must come back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from gpu_host.backend.masks import decode_mask
from gpu_host.models import __main__ as cli
from gpu_host.models.spec import load_processor, model_catalog
from gpu_host.triton.local import LocalTriton
from tests.integration.gpu_host.dataplane_support import (
    RunningBackend,
    TokenIssuer,
    backend_settings,
    running_triton,
)
from tests.integration.models.models_support import camera_jpeg, infer_once
from tests.unit.models.yolo_exports import (
    DETECT_LABELS,
    KEYPOINTS,
    SEGMENT_BITMAP,
    SIZE,
    detect_outputs,
    pose_outputs,
    segment_outputs,
    yolo_graph,
)

pytestmark = pytest.mark.triton

ADDED = {
    # name: (task, graph, labels)
    "shapes": ("detect", yolo_graph(detect_outputs()), DETECT_LABELS),
    "nails": ("segment", yolo_graph(segment_outputs()), ("nail",)),
    "people": ("pose", yolo_graph(pose_outputs()), None),
    "stubborn": ("detect", yolo_graph(detect_outputs(), batchable=False), DETECT_LABELS),
}
FRAME = np.full((64, 128, 3), 90, np.uint8)
"""Letterboxed into 64×64 at half scale with 16 px bands: the known box lands on x, y
0.25..0.75 of the frame."""
BOX = [0.25, 0.25, 0.75, 0.75]


@pytest.fixture(scope="module")
def user_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user folder after one `add` per export, as a user would run them."""
    exports = tmp_path_factory.mktemp("exports")
    folder = tmp_path_factory.mktemp("user-models")
    for name, (task, graph, labels) in ADDED.items():
        path = exports / f"{name}-export.onnx"
        onnx.save(graph, str(path))
        args = ["add", str(path), "--task", task, "--name", name, "--user-dir", str(folder)]
        if labels:
            (exports / f"{name}.txt").write_text("\n".join(labels))
            args += ["--labels", str(exports / f"{name}.txt")]
        assert cli.main(args) == 0, name
    return folder / "user_models.json"


@pytest.fixture(scope="module")
def added_triton(
    tmp_path_factory: pytest.TempPathFactory, user_models: Path
) -> Iterator[LocalTriton]:
    with running_triton(
        tmp_path_factory.mktemp("triton-added"), models=tuple(ADDED), user_models=user_models
    ) as server:
        yield server


@pytest.fixture(scope="module")
def added_backend(
    token_issuer: TokenIssuer, added_triton: LocalTriton, user_models: Path
) -> Iterator[RunningBackend]:
    running = RunningBackend(
        backend_settings(
            token_issuer,
            triton_url=added_triton.http_url,
            models=tuple(ADDED),
            user_models=user_models,
            frame_budget_ms=20_000.0,
        )
    )
    running.start()
    running.wait_ready(timeout_s=120)
    yield running
    running.stop()


def test_triton_batches_what_add_made_dynamic_and_not_the_rest(
    added_triton: LocalTriton,
) -> None:
    client = grpcclient.InferenceServerClient(added_triton.grpc_url)
    batches = {
        name: int(client.get_model_config(name, as_json=True)["config"].get("max_batch_size", 0))
        for name in ADDED
    }
    assert batches == {"shapes": 8, "nails": 8, "people": 8, "stubborn": 1}


async def test_each_added_model_returns_its_results_over_the_socket(
    added_backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    """One session selecting all four: each model's known detection comes back in frame
    coordinates under its own name; the pose model's keypoints and the segment model's
    instance mask too."""
    result = await infer_once(added_backend, token_issuer, camera_jpeg(FRAME), list(ADDED))
    found = {d["model"]: d for d in result["detections"]}
    assert sorted(found) == sorted(ADDED)
    for name, label in [
        ("shapes", "square"),
        ("stubborn", "square"),
        ("nails", "nail"),
        ("people", "person"),
    ]:
        assert found[name]["label"] == label
        assert found[name]["box"] == pytest.approx(BOX, abs=1e-4)
    (pose,) = result["keypoints"]
    assert pose["model"] == "people"
    assert len(pose["points"]) == KEYPOINTS
    (mask,) = result["masks"]
    assert (mask["model"], mask["label"]) == ("nails", "nail")
    assert mask["box"] == pytest.approx(BOX, abs=1e-4)
    assert decode_mask(mask).bitmap.tolist() == SEGMENT_BITMAP


def infer(triton: LocalTriton, name: str, images: npt.NDArray[np.float32]) -> dict[str, Any]:
    """One request straight to Triton (no backend): `images` is a whole batch."""
    assert triton.user_models is not None
    spec = model_catalog(triton.user_models)[name]
    client = grpcclient.InferenceServerClient(triton.grpc_url)
    request = grpcclient.InferInput(spec.inputs[0].name, list(images.shape), "FP32")
    request.set_data_from_numpy(images)
    wanted = [grpcclient.InferRequestedOutput(t.name) for t in spec.outputs]
    response = client.infer(name, [request], outputs=wanted)
    return {t.name: response.as_numpy(t.name) for t in spec.outputs}


def test_the_segment_model_gives_its_mask_through_triton(added_triton: LocalTriton) -> None:
    """The segment export's two outputs, from Triton, decode into the nail's instance mask
    over its box (the wire encoding of masks is the protocol's, tested there)."""
    assert added_triton.user_models is not None
    spec = model_catalog(added_triton.user_models)["nails"]
    processor = load_processor(spec)
    tensors, letterbox = processor.preprocess(FRAME)
    outputs = infer(added_triton, "nails", tensors["images"][None])
    result = processor.postprocess({k: v[0] for k, v in outputs.items()}, letterbox)
    (mask,) = result.masks
    assert (mask.model, mask.label) == ("nails", "nail")
    assert mask.box == pytest.approx(tuple(BOX), abs=1e-4)
    assert mask.bitmap.tolist() == SEGMENT_BITMAP


def test_a_batch_goes_to_the_dynamic_graph_not_to_the_unbatched_one(
    added_triton: LocalTriton,
) -> None:
    images = np.random.default_rng(0).random((2, 3, SIZE, SIZE), dtype=np.float32)
    (out,) = infer(added_triton, "shapes", images).values()
    np.testing.assert_allclose(out, np.stack([detect_outputs()["output0"]] * 2), atol=1e-5)
    with pytest.raises(InferenceServerException, match="batch"):
        infer(added_triton, "stubborn", images)
