"""The lean HTTP client against the real tritonserver (CPU): the same outputs as tritonclient's
gRPC client for the same input on the same server, with the tensors in the body or in shared
memory; batches that split back into their items; a region Triton lost; and Triton's own
refusal of an unknown model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import tritonclient.grpc as grpcclient

from bench.roundtrip import bench_frame
from gpu_host.backend.breaker import BreakerState, CircuitBreaker
from gpu_host.backend.protocol import InferenceFailedError
from gpu_host.backend.triton_gateway import TritonGateway
from gpu_host.backend.triton_http import Tensor, TritonHttpClient, TritonHttpError
from gpu_host.models.spec import BUILTIN_SPECS, ModelSpec, load_processor
from gpu_host.triton.local import LocalTriton
from gpu_host.vision.types import Image
from tests.integration.gpu_host.dataplane_support import running_triton
from tests.unit.vision.photos import load

pytestmark = pytest.mark.triton

MODELS = ("face", "detect")
"""The shared `triton` fixture serves only `text`; these tests want the vision models."""
TIMEOUT_S = 60.0
"""Generous: a busy 2-core machine running Triton on the CPU."""


@pytest.fixture(scope="module")
def vision_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTriton]:
    with running_triton(
        tmp_path_factory.mktemp("triton-http"), models=MODELS, user_models=None
    ) as server:
        yield server


SLOT_BYTES = max(BUILTIN_SPECS[name].inputs[0].nbytes for name in MODELS)


@pytest.fixture(params=["body", "shared-memory"])
async def gateway(
    vision_triton: LocalTriton, request: pytest.FixtureRequest
) -> AsyncIterator[TritonGateway]:
    """A gateway sending tensors in the request body, and one sending them through shared
    memory (registered with this Triton on first use)."""
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=30)
    made = TritonGateway(
        url=vision_triton.http_url,
        breaker=breaker,
        timeout_s=TIMEOUT_S,
        shared_slot_bytes=SLOT_BYTES if request.param == "shared-memory" else None,
    )
    yield made
    if request.param == "shared-memory":
        assert made.shared_memory_in_use, "Triton took the region: the tensors went through it"
    await made.close()


def photograph() -> Image:
    return load("astronaut")


def frame() -> Image:
    image, _ = bench_frame()
    return np.ascontiguousarray(np.asarray(image.convert("RGB")))


IMAGES = {"astronaut": photograph, "bench-frame": frame}


def tensors(spec: ModelSpec, image: Image) -> dict[str, npt.NDArray[Any]]:
    """The model's input for `image`, as the backend's pipeline prepares it."""
    prepared, _ = load_processor(spec).preprocess(image)
    return prepared


def via_grpc(
    triton: LocalTriton, spec: ModelSpec, item: dict[str, npt.NDArray[Any]]
) -> dict[str, npt.NDArray[Any]]:
    """One item through tritonclient's gRPC client (the backend's client before this one)."""
    client = grpcclient.InferenceServerClient(triton.grpc_url)
    try:
        inputs = []
        for tensor in spec.inputs:
            batch = item[tensor.name][np.newaxis]
            request = grpcclient.InferInput(tensor.name, list(batch.shape), tensor.dtype.value)
            request.set_data_from_numpy(batch)
            inputs.append(request)
        outputs = [grpcclient.InferRequestedOutput(t.name) for t in spec.outputs]
        result = client.infer(spec.name, inputs, outputs=outputs, client_timeout=TIMEOUT_S)
        return {t.name: result.as_numpy(t.name)[0] for t in spec.outputs}
    finally:
        client.close()


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("model", MODELS)
async def test_http_outputs_equal_grpc_outputs_exactly(
    vision_triton: LocalTriton, gateway: TritonGateway, model: str, image: str
) -> None:
    spec = BUILTIN_SPECS[model]
    item = tensors(spec, IMAGES[image]())
    over_http = await gateway.infer(spec, item)
    over_grpc = via_grpc(vision_triton, spec, item)
    assert set(over_http) == {t.name for t in spec.outputs}
    for tensor in spec.outputs:
        got, expected = over_http[tensor.name], over_grpc[tensor.name]
        assert got.shape == tensor.dims
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected, err_msg=f"{model}.{tensor.name}")
    assert gateway.breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("model", MODELS)
async def test_a_batch_of_two_equals_two_single_calls(gateway: TritonGateway, model: str) -> None:
    """ONNX Runtime may sum in a different order for a batch of 2, hence the tolerance that
    tests/unit/vision/test_batch_consistency.py allows too."""
    spec = BUILTIN_SPECS[model]
    items = [tensors(spec, make()) for make in IMAGES.values()]
    together = await gateway.infer_many(spec, items)
    alone = [await gateway.infer(spec, item) for item in items]
    assert len(together) == 2
    for batched, single in zip(together, alone, strict=True):
        for tensor in spec.outputs:
            assert batched[tensor.name].shape == tensor.dims
            np.testing.assert_allclose(batched[tensor.name], single[tensor.name], 1e-4, 1e-4)
    assert not np.array_equal(together[0][spec.outputs[0].name], together[1][spec.outputs[0].name])


async def test_a_region_triton_lost_is_registered_again_with_the_same_outputs(
    vision_triton: LocalTriton,
) -> None:
    """Given the region unregistered behind the gateway's back (what a Triton restart does),
    the next request still gets the same outputs (its tensors sent in the body), and the one
    after registers the region again and goes through it."""
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=30)
    gateway = TritonGateway(
        url=vision_triton.http_url,
        breaker=breaker,
        timeout_s=TIMEOUT_S,
        shared_slot_bytes=SLOT_BYTES,
    )
    spec = BUILTIN_SPECS["face"]
    item = tensors(spec, frame())
    client = TritonHttpClient(vision_triton.http_url)
    try:
        first = await gateway.infer(spec, item)
        region = gateway.shared_region
        assert region is not None
        in_use = [gateway.shared_memory_in_use]
        lost = await client.request(
            "POST", f"/v2/systemsharedmemory/region/{region}/unregister", timeout_s=TIMEOUT_S
        )
        assert lost.status == 200
        again = await gateway.infer(spec, item)
        in_use.append(gateway.shared_memory_in_use)
        third = await gateway.infer(spec, item)
        in_use.append(gateway.shared_memory_in_use)
        status = await client.request(
            "GET", f"/v2/systemsharedmemory/region/{region}/status", timeout_s=TIMEOUT_S
        )
        assert status.status == 200, "registered again"
    finally:
        await client.close()
        await gateway.close()
    assert in_use == [True, False, True]
    for tensor in spec.outputs:
        np.testing.assert_array_equal(again[tensor.name], first[tensor.name])
        np.testing.assert_array_equal(third[tensor.name], first[tensor.name])
    assert breaker.state is BreakerState.CLOSED


async def test_an_unknown_model_is_refused_with_tritons_message(
    vision_triton: LocalTriton, gateway: TritonGateway
) -> None:
    image = np.zeros((1, 128, 128, 3), dtype=np.uint8)
    client = TritonHttpClient(vision_triton.http_url)
    try:
        with pytest.raises(TritonHttpError) as caught:
            await client.infer("nope", [Tensor("image", "UINT8", image)], ["boxes"], timeout_s=30)
    finally:
        await client.close()
    assert caught.value.status == 404  # this Triton says "not found" (the brief guessed 400)
    assert "nope" in caught.value.message
    assert "unknown model" in caught.value.message.lower()

    unknown = ModelSpec(
        name="nope",
        onnx_file="nope.onnx",
        inputs=BUILTIN_SPECS["face"].inputs,
        outputs=BUILTIN_SPECS["face"].outputs,
        max_batch_size=8,
        batching=None,
        processor="tests.nowhere:processor",
    )
    with pytest.raises(InferenceFailedError) as failed:
        await gateway.infer(unknown, {"image": image[0]})
    assert str(failed.value) == f"nope: {caught.value.message}"
    assert gateway.breaker.state is BreakerState.CLOSED, "Triton answered"
