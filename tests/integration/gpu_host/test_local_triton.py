"""The local Triton runner: the real tritonserver from the nvidia-pytriton wheel, on the CPU."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient

from gpu_host.backend.triton_shm import SHM_DIR
from gpu_host.models.spec import BUILTIN_SPECS
from gpu_host.triton.local import LocalTriton, LocalTritonError
from tests.integration.gpu_host.dataplane_support import DATAPLANE_MODELS, local_triton

pytestmark = pytest.mark.triton


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def server_running(server: LocalTriton) -> bool:
    return server.running


def make_triton(run_dir: Path, **kwargs: Any) -> LocalTriton:
    return local_triton(run_dir, models=DATAPLANE_MODELS, user_models=None, **kwargs)


def test_batched_request_matches_onnxruntime_directly(triton: LocalTriton) -> None:
    """Given a batch of 3 images in one request, the local model (Python backend running
    ONNX Runtime) returns what ONNX Runtime returns for the same ONNX file."""
    spec = BUILTIN_SPECS["text"]
    images = np.random.default_rng(1).integers(0, 256, (3, 256, 320, 3), dtype=np.uint8)
    client = grpcclient.InferenceServerClient(triton.grpc_url)
    request = grpcclient.InferInput("image", list(images.shape), "UINT8")
    request.set_data_from_numpy(images)
    via_triton = client.infer("text", [request]).as_numpy("prob")
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    (direct,) = session.run(["prob"], {"image": images})
    assert via_triton.shape == (3, 1, 256, 320)
    np.testing.assert_allclose(via_triton, direct, atol=1e-4)


def test_serves_on_the_configured_ports_with_the_local_repository(triton: LocalTriton) -> None:
    client = grpcclient.InferenceServerClient(triton.grpc_url)
    assert client.is_server_ready()
    config = client.get_model_config("text", as_json=True)["config"]
    assert config["backend"] == "python"
    assert config["max_batch_size"] == BUILTIN_SPECS["text"].max_batch_size
    assert (triton.run_dir / "models" / "text" / "1" / "model.onnx").is_file()
    assert triton.log_path.is_file()


def test_sigterm_stops_it_and_leaves_no_process_or_shared_memory_behind(tmp_path: Path) -> None:
    server = make_triton(tmp_path)
    with server:
        assert server.running
        proc = server._proc
        assert proc is not None
        assert group_alive(proc.pid)  # the server leads its own process group
        regions = list(SHM_DIR.glob(f"{server.shm_prefix}*"))
        assert regions, "the Python backend's regions carry this server's own prefix"
    assert not any(region.exists() for region in regions)
    assert not server_running(server)
    assert proc.returncode in (0, -signal.SIGTERM), "stopped gracefully, not killed"
    assert not group_alive(proc.pid), "tritonserver or a Python stub outlived stop()"
    server.stop()  # idempotent


def test_a_model_that_fails_to_load_is_reported_with_the_log(tmp_path: Path) -> None:
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / BUILTIN_SPECS["text"].onnx_file).write_bytes(b"this is not an onnx file")
    server = make_triton(tmp_path / "run", zoo_dir=zoo)
    with pytest.raises(LocalTritonError, match="exited") as caught:
        server.start()
    assert "text" in str(caught.value)
    assert not server.running


def test_a_venv_without_pytriton_is_a_clear_error(tmp_path: Path) -> None:
    server = LocalTriton(
        run_dir=tmp_path / "run", triton_venv=tmp_path / "nowhere", user_models=None
    )
    with pytest.raises(LocalTritonError, match="no Python in the Triton venv"):
        server.start()


def test_starting_twice_is_refused(triton: LocalTriton) -> None:
    with pytest.raises(LocalTritonError, match="already started"):
        triton.start()
