"""`python -m gpu_host.models.verify` against the real local Triton: the folder's Triton (every
zoo model and a user's YOLOv8 export) passes; a Triton serving deliberately broken copies of
`face` (its `boxes` scaled by 1.25) and `pose` (its input normalized to half brightness) fails,
naming each model and output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from gpu_host.models.spec import BUILTIN_SPECS, ZOO_DIR
from gpu_host.triton.local import LocalTriton
from infra.local.ports import free_port
from tests.integration.gpu_host.dataplane_support import running_triton
from tests.integration.models.conftest import SERVED

pytestmark = pytest.mark.triton

BROKEN = ("face", "pose")


def run_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpu_host.models.verify", "--target", "local", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def scale_output(model: onnx.ModelProto, output: str, factor: float) -> onnx.ModelProto:
    """The same graph with `output` multiplied by `factor` (a wrong post-scale)."""
    raw = f"{output}_unscaled"
    for node in model.graph.node:
        node.output[:] = [raw if o == output else o for o in node.output]
    model.graph.initializer.append(
        numpy_helper.from_array(np.array(factor, np.float32), "broken_factor")
    )
    model.graph.node.append(helper.make_node("Mul", [raw, "broken_factor"], [output]))
    return model


def dim_input(model: onnx.ModelProto, name: str, factor: float) -> onnx.ModelProto:
    """The same graph reading `name` at `factor` brightness (a wrong input normalization)."""
    dimmed = f"{name}_dimmed"
    for node in model.graph.node:
        node.input[:] = [dimmed if i == name else i for i in node.input]
    model.graph.initializer.append(
        numpy_helper.from_array(np.array(factor, np.float32), "broken_gain")
    )
    prefix = [
        helper.make_node("Cast", [name], ["broken_float"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Mul", ["broken_float", "broken_gain"], ["broken_scaled"]),
        helper.make_node("Cast", ["broken_scaled"], [dimmed], to=onnx.TensorProto.UINT8),
    ]
    nodes = [*prefix, *model.graph.node]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


@pytest.fixture(scope="module")
def broken_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTriton]:
    zoo = tmp_path_factory.mktemp("broken-zoo")
    face, pose = (BUILTIN_SPECS[name].onnx_file for name in BROKEN)
    onnx.save(scale_output(onnx.load(str(ZOO_DIR / face)), "boxes", 1.25), str(zoo / face))
    onnx.save(dim_input(onnx.load(str(ZOO_DIR / pose)), "image", 0.5), str(zoo / pose))
    with running_triton(
        tmp_path_factory.mktemp("broken-triton"), models=BROKEN, zoo_dir=zoo, user_models=None
    ) as server:
        yield server


def test_every_served_model_matches_its_onnx_reference(
    triton: LocalTriton, user_models: Path
) -> None:
    done = run_verify("--url", triton.grpc_url, "--user-models", str(user_models))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:-1]]
    assert {row[0] for row in rows} == set(SERVED)
    assert all(row[4] == "pass" for row in rows), done.stdout
    assert done.stdout.splitlines()[-1] == f"verification passed: {len(SERVED)} models"


def test_a_broken_model_fails_naming_the_model_and_the_output(
    broken_triton: LocalTriton, tmp_path: Path
) -> None:
    decided = tmp_path / "decided.json"
    done = run_verify(
        *("--url", broken_triton.grpc_url, "--models", *BROKEN),
        *("--user-models", str(tmp_path / "none.json"), "--decide", str(decided)),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    verdict = done.stdout.splitlines()[-1]
    assert verdict.startswith("verification FAILED: ")
    assert "model 'face': output 'boxes' differs by" in verdict
    assert "model 'pose': output 'keypoints' differs by" in verdict
    assert "'scores'" not in verdict, "face's scores were left alone and must pass"
    results = {tuple(line.split()[:2]): line.split()[4] for line in done.stdout.splitlines()[1:-1]}
    assert results == {
        ("face", "boxes"): "FAIL",
        ("face", "scores"): "pass",
        ("pose", "keypoints"): "FAIL",
    }
    # Served without TensorRT there is no lower precision to fall back to.
    assert json.loads(decided.read_text()) == {
        "precisions": {},
        "fell_back": [],
        "failing": ["face", "pose"],
    }


def test_an_unreachable_triton_fails_with_its_address(tmp_path: Path) -> None:
    url = f"127.0.0.1:{free_port()}"
    done = run_verify("--url", url, "--models", "face", "--user-models", str(tmp_path / "x"))
    assert done.returncode != 0
    assert f"no Triton at {url}" in done.stderr
