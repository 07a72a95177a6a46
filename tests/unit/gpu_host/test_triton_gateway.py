"""The Triton gateway (`gpu_host.backend.triton_gateway`) against a scripted loopback HTTP
server: how each kind of failure maps to the frame errors and to the circuit breaker, the
model repository calls, and how `infer_many` splits items into batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from gpu_host.backend.breaker import BreakerState, CircuitBreaker
from gpu_host.backend.protocol import InferenceFailedError, UnavailableError
from gpu_host.backend.triton_gateway import ModelLoadError, TritonGateway, TritonUnreachableError
from gpu_host.models.spec import DType, ModelSpec, TensorSpec
from infra.local.ports import free_port
from tests.unit.gpu_host.dataplane_unit_support import FakeClock
from tests.unit.gpu_host.fake_http_server import (
    Reply,
    Request,
    infer_response,
    json_response,
    read_infer,
    response,
    serving,
)

TIMEOUT_S = 5.0
COOLDOWN_S = 5.0

SPEC = ModelSpec(
    name="tiny",
    onnx_file="tiny.onnx",
    inputs=(TensorSpec("x", DType.FP32, (2,)), TensorSpec("k", DType.INT32, (1,))),
    outputs=(TensorSpec("y", DType.FP32, (3,)), TensorSpec("n", DType.INT64, (1,))),
    max_batch_size=2,
    batching=None,
    processor="tests.nowhere:processor",
)


def item(i: int) -> dict[str, npt.NDArray[Any]]:
    return {
        "x": np.array([i, 10 * i], dtype=np.float32),
        "k": np.array([i], dtype=np.int32),
    }


def tiny_model(request: Request) -> Reply:
    """y = (x0, x1, x0 + x1) and n = k * 2, per item of the batch; any other request is 200."""
    if not request.path.endswith("/infer"):
        return Reply(json_response(200, {}))
    inputs = read_infer(request).inputs
    x, k = inputs["x"], inputs["k"]
    y = np.concatenate([x, x.sum(axis=1, keepdims=True)], axis=1)
    return Reply(infer_response({"y": y, "n": (k * 2).astype(np.int64)}))


def refuse(status: int, message: str) -> Callable[[Request], Reply]:
    return lambda request: Reply(json_response(status, {"error": message}))


def drop(request: Request) -> Reply:
    """Close the connection without an answer."""
    return Reply(close=True)


class Hang:
    """Never answers (until the server stops)."""

    def __init__(self) -> None:
        self.never = asyncio.Event()

    async def __call__(self, request: Request) -> Reply:
        await self.never.wait()
        return Reply()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=2, cooldown_s=COOLDOWN_S, clock=clock)


Gateways = Callable[..., TritonGateway]


@pytest.fixture
async def gateway(breaker: CircuitBreaker) -> AsyncIterator[Gateways]:
    """`gateway(url, timeout_s=...)`: a gateway with the test's breaker, closed after."""
    made: list[TritonGateway] = []

    def make(url: str, timeout_s: float = TIMEOUT_S) -> TritonGateway:
        made.append(TritonGateway(url=url, breaker=breaker, timeout_s=timeout_s))
        return made[-1]

    yield make
    for g in made:
        await g.close()


def half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Open the breaker, then let its cooldown pass: the next call is its probe, whose
    outcome (success or failure) decides the state the test then reads."""
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(COOLDOWN_S)


def nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}"


# --- inference and the breaker ----------------------------------------------------------------


async def test_one_item_goes_as_a_batch_of_one_and_comes_back_without_the_batch_axis(
    gateway: Gateways, breaker: CircuitBreaker
) -> None:
    async with serving(tiny_model) as server:
        outputs = await gateway(server.url).infer(SPEC, item(3))
    (request,) = server.requests
    assert request.path == "/v2/models/tiny/infer"
    assert {k: v.shape for k, v in read_infer(request).inputs.items()} == {
        "x": (1, 2),
        "k": (1, 1),
    }
    np.testing.assert_array_equal(outputs["y"], [3, 30, 33])
    np.testing.assert_array_equal(outputs["n"], [6])
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(("items", "batches"), [(1, [1]), (2, [2]), (3, [2, 1]), (5, [2, 2, 1])])
async def test_infer_many_sends_ceil_k_over_max_batch_size_requests(
    gateway: Gateways, items: int, batches: list[int]
) -> None:
    async with serving(tiny_model) as server:
        outputs = await gateway(server.url).infer_many(SPEC, [item(i) for i in range(items)])
    sizes = sorted((len(read_infer(r).inputs["x"]) for r in server.requests), reverse=True)
    assert sizes == batches
    assert [o["y"].tolist() for o in outputs] == [[i, 10 * i, 11 * i] for i in range(items)]
    assert [o["n"].tolist() for o in outputs] == [[2 * i] for i in range(items)]


@pytest.mark.parametrize(
    "bad",
    [
        {"x": np.zeros(3, dtype=np.float32), "k": np.zeros(1, dtype=np.int32)},
        {"x": np.zeros(2, dtype=np.float64), "k": np.zeros(1, dtype=np.int32)},
        {"x": np.zeros(2, dtype=np.float32)},
    ],
    ids=["wrong-shape", "wrong-dtype", "missing-input"],
)
async def test_an_item_that_does_not_fit_the_spec_is_refused_before_sending(
    gateway: Gateways, bad: dict[str, npt.NDArray[Any]]
) -> None:
    async with serving(tiny_model) as server:
        with pytest.raises(ValueError, match="tiny"):
            await gateway(server.url).infer(SPEC, bad)
    assert server.requests == []


@pytest.mark.parametrize("failure", ["refused", "dropped", "timeout"])
async def test_a_transport_failure_is_unavailable_and_counts_against_the_breaker(
    gateway: Gateways, breaker: CircuitBreaker, clock: FakeClock, failure: str
) -> None:
    half_open(breaker, clock)
    handler = Hang() if failure == "timeout" else drop
    async with serving(handler) as server:
        url = nowhere() if failure == "refused" else server.url
        with pytest.raises(UnavailableError, match="inference server unavailable"):
            await gateway(url, timeout_s=0.2).infer(SPEC, item(1))
    assert breaker.state is BreakerState.OPEN, "the probe failed"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (json_response(400, {"error": "unexpected shape for input 'x'"}), "unexpected shape"),
        (response(500, b"internal"), "internal"),
        (infer_response({"y": np.zeros((1, 3), np.float32)}), "lacks output"),
    ],
    ids=["400", "500-text", "malformed-200"],
)
async def test_an_answered_error_is_inference_failed_and_a_breaker_success(
    gateway: Gateways, breaker: CircuitBreaker, clock: FakeClock, answer: bytes, message: str
) -> None:
    half_open(breaker, clock)
    async with serving(lambda r: Reply(answer)) as server:
        with pytest.raises(InferenceFailedError, match=message) as caught:
            await gateway(server.url).infer(SPEC, item(1))
    assert str(caught.value).startswith("tiny: ")
    assert breaker.state is BreakerState.CLOSED, "Triton answered: the connection works"


async def test_an_output_with_the_wrong_batch_is_inference_failed(gateway: Gateways) -> None:
    wrong = infer_response({"y": np.zeros((2, 3), np.float32), "n": np.zeros((2, 1), np.int64)})
    async with serving(lambda r: Reply(wrong)) as server:
        with pytest.raises(InferenceFailedError, match="items, sent 1"):
            await gateway(server.url).infer(SPEC, item(1))


async def test_an_open_circuit_fails_fast_without_a_request(
    gateway: Gateways, breaker: CircuitBreaker
) -> None:
    breaker.record_failure()
    breaker.record_failure()
    async with serving(tiny_model) as server:
        with pytest.raises(UnavailableError, match="circuit open"):
            await gateway(server.url).infer(SPEC, item(1))
    assert server.requests == []
    assert server.connections == 0


async def test_consecutive_transport_failures_open_the_circuit(
    gateway: Gateways, breaker: CircuitBreaker
) -> None:
    g = gateway(nowhere())
    for _ in range(2):
        with pytest.raises(UnavailableError, match="cannot connect"):
            await g.infer(SPEC, item(1))
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(UnavailableError, match="circuit open"):
        await g.infer(SPEC, item(1))


# --- readiness --------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "ready"), [(200, True), (400, False)])
async def test_model_ready_reads_the_status(gateway: Gateways, status: int, ready: bool) -> None:
    async with serving(lambda r: Reply(response(status))) as server:
        assert await gateway(server.url).model_ready("tiny") is ready
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v2/models/tiny/ready")]


@pytest.mark.parametrize("failure", ["refused", "timeout"])
async def test_model_ready_of_an_unreachable_triton_raises(gateway: Gateways, failure: str) -> None:
    async with serving(Hang()) as server:
        url = nowhere() if failure == "refused" else server.url
        with pytest.raises(TritonUnreachableError, match="inference server unavailable"):
            await gateway(url, timeout_s=0.2).model_ready("tiny")


@pytest.mark.parametrize(
    ("statuses", "ready"),
    [({}, True), ({"/v2/health/live": 503}, False), ({"/v2/models/b/ready": 400}, False)],
)
async def test_models_ready_needs_triton_live_and_every_model_ready(
    gateway: Gateways, statuses: dict[str, int], ready: bool
) -> None:
    async with serving(lambda r: Reply(response(statuses.get(r.path, 200)))) as server:
        assert await gateway(server.url).models_ready(["a", "b"]) is ready


async def test_models_ready_of_an_unreachable_triton_is_false(gateway: Gateways) -> None:
    assert await gateway(nowhere()).models_ready(["a"]) is False


# --- the model repository ---------------------------------------------------------------------


async def test_load_model_posts_to_the_repository(gateway: Gateways) -> None:
    async with serving(lambda r: Reply(response(200))) as server:
        await gateway(server.url).load_model("tiny", timeout_s=TIMEOUT_S)
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/v2/repository/models/tiny/load")
    ]


async def test_load_model_refused_says_tritons_reason(gateway: Gateways) -> None:
    reason = "load failed for model 'tiny': version 1 is at UNAVAILABLE state"
    async with serving(refuse(400, reason)) as server:
        with pytest.raises(ModelLoadError) as caught:
            await gateway(server.url).load_model("tiny", timeout_s=TIMEOUT_S)
    assert caught.type is ModelLoadError, "Triton answered: not unreachable"
    assert str(caught.value) == f"tiny: {reason}"


async def test_load_model_with_nothing_listening_is_unreachable(gateway: Gateways) -> None:
    with pytest.raises(TritonUnreachableError, match="inference server unavailable"):
        await gateway(nowhere()).load_model("tiny", timeout_s=TIMEOUT_S)


async def test_load_model_past_its_timeout_is_a_load_error_not_unreachable(
    gateway: Gateways,
) -> None:
    async with serving(Hang()) as server:
        with pytest.raises(ModelLoadError, match=r"not loaded within 0\.2 s") as caught:
            await gateway(server.url).load_model("tiny", timeout_s=0.2)
    assert caught.type is ModelLoadError


async def test_unload_model_posts_to_the_repository(gateway: Gateways) -> None:
    async with serving(lambda r: Reply(response(200))) as server:
        await gateway(server.url).unload_model("tiny")
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/v2/repository/models/tiny/unload")
    ]


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ("refused", "unload failed: cannot connect"),
        ("timeout", "unload failed: no answer in time"),
        ("400", "unload failed: no model 'tiny'"),
    ],
)
async def test_unload_model_failures_are_load_errors(
    gateway: Gateways, failure: str, message: str
) -> None:
    handler = Hang() if failure == "timeout" else refuse(400, "no model 'tiny'")
    async with serving(handler) as server:
        url = nowhere() if failure == "refused" else server.url
        with pytest.raises(ModelLoadError, match=message):
            await gateway(url, timeout_s=0.2).unload_model("tiny")
