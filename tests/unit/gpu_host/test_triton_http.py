"""The lean Triton HTTP client (`gpu_host.backend.triton_http`) against a scripted loopback
HTTP server: the binary-data wire format, connection pooling and reuse, and every way an
answer can fail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from gpu_host.backend.triton_http import (
    MalformedResponseError,
    Response,
    Tensor,
    TransportError,
    TritonHttpClient,
    TritonHttpError,
    decode_outputs,
    triton_address,
)
from infra.local.ports import free_port
from tests.support.waiting import eventually_async
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
"""Generous: no test here waits for it to pass, only for the server's answer."""

IMAGE = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
SCALE = np.array([[0.5], [2.0]], dtype=np.float32)


def ok(request: Request) -> Reply:
    return Reply(json_response(200, {"live": True}))


def echo_model(request: Request) -> Reply:
    """A model that answers `image` summed per item (INT64) and `scale` doubled (FP16); any
    other request is fine."""
    if not request.path.endswith("/infer"):
        return ok(request)
    inputs = read_infer(request).inputs
    image, scale = inputs["image"], inputs["scale"]
    return Reply(
        infer_response(
            {
                "total": image.reshape(len(image), -1).sum(axis=1, dtype=np.int64),
                "double": (scale * 2).astype(np.float16),
            }
        )
    )


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., TritonHttpClient]]:
    """`connect(url, **options)`: a client, closed after the test."""
    made: list[TritonHttpClient] = []

    def make(url: str, **options: Any) -> TritonHttpClient:
        made.append(TritonHttpClient(url, **options))
        return made[-1]

    yield make
    for c in made:
        await c.close()


Connect = Callable[..., TritonHttpClient]


async def get(client: TritonHttpClient, path: str = "/v2/health/live") -> Response:
    return await client.request("GET", path, timeout_s=TIMEOUT_S)


async def infer_echo(client: TritonHttpClient) -> dict[str, npt.NDArray[Any]]:
    return await client.infer(
        "face",
        [Tensor("image", "UINT8", IMAGE), Tensor("scale", "FP32", SCALE)],
        ["total", "double"],
        timeout_s=TIMEOUT_S,
    )


# --- the wire format --------------------------------------------------------------------------


async def test_an_infer_request_carries_a_json_header_then_the_raw_tensors(
    connect: Connect,
) -> None:
    async with serving(echo_model) as server:
        outputs = await infer_echo(connect(server.url))
    (request,) = server.requests
    assert (request.method, request.path, request.version) == (
        "POST",
        "/v2/models/face/infer",
        "HTTP/1.1",
    )
    length = int(request.headers["inference-header-content-length"])
    assert json.loads(request.body[:length]) == {
        "inputs": [
            {
                "name": "image",
                "shape": [2, 3, 4, 3],
                "datatype": "UINT8",
                "parameters": {"binary_data_size": IMAGE.nbytes},
            },
            {
                "name": "scale",
                "shape": [2, 1],
                "datatype": "FP32",
                "parameters": {"binary_data_size": SCALE.nbytes},
            },
        ],
        "outputs": [
            {"name": "total", "parameters": {"binary_data": True}},
            {"name": "double", "parameters": {"binary_data": True}},
        ],
    }
    assert request.body[length:] == IMAGE.tobytes() + SCALE.tobytes()
    assert int(request.headers["content-length"]) == len(request.body)
    assert request.headers["host"] == server.url.removeprefix("http://")
    assert outputs["total"].dtype == np.int64
    np.testing.assert_array_equal(outputs["total"], IMAGE.reshape(2, -1).sum(axis=1))
    assert outputs["double"].dtype == np.float16
    assert outputs["double"].shape == (2, 1)
    np.testing.assert_array_equal(outputs["double"], [[1.0], [4.0]])
    assert not outputs["total"].flags.writeable, "a view of the response body"


async def test_a_model_name_is_quoted_into_the_path(connect: Connect) -> None:
    async with serving(echo_model) as server:
        await connect(server.url).infer(
            "my model/v2",
            [Tensor("image", "UINT8", IMAGE), Tensor("scale", "FP32", SCALE)],
            ["total"],
            timeout_s=TIMEOUT_S,
        )
    assert server.requests[0].path == "/v2/models/my%20model%2Fv2/infer"


@pytest.mark.parametrize(
    "array",
    [
        np.array([[True, False, True]]),
        np.array([[1, -2, 3]], dtype=np.int8),
        np.array([[1, 2, 70000]], dtype=np.uint32),
        np.array([[1.5, -2.25, 1e300]], dtype=np.float64),
        np.array([[0.5, -1.0, 65504]], dtype=np.float16),
    ],
    ids=lambda a: str(a.dtype),
)
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json-data"])
async def test_outputs_decode_to_their_dtype_shape_and_values(
    connect: Connect, array: npt.NDArray[Any], binary: bool
) -> None:
    """Binary outputs, and JSON `data` outputs (a server that ignored `binary_data`)."""

    def answer(request: Request) -> Reply:
        return Reply(infer_response({"out": array}, binary=binary))

    async with serving(answer) as server:
        outputs = await connect(server.url).infer("m", [], ["out"], timeout_s=TIMEOUT_S)
    assert outputs["out"].dtype == array.dtype
    np.testing.assert_array_equal(outputs["out"], array)


async def test_a_chunked_response_is_read_whole(connect: Connect) -> None:
    whole = infer_response({"out": np.arange(6, dtype=np.float32).reshape(2, 3)})
    head, body = whole.split(b"\r\n\r\n", 1)
    head = head.replace(f"Content-Length: {len(body)}".encode(), b"Transfer-Encoding: chunked")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]))

    async with serving(lambda r: Reply(head + b"\r\n\r\n" + chunks + b"0\r\n\r\n")) as server:
        outputs = await connect(server.url).infer("m", [], ["out"], timeout_s=TIMEOUT_S)
    np.testing.assert_array_equal(outputs["out"], np.arange(6).reshape(2, 3))


# --- connections ------------------------------------------------------------------------------


async def test_sequential_requests_share_one_keep_alive_connection(connect: Connect) -> None:
    async with serving(echo_model) as server:
        client = connect(server.url)
        await infer_echo(client)
        await infer_echo(client)
        await get(client)
    assert server.connections == 1
    assert [r.connection for r in server.requests] == [0, 0, 0]


class Gate:
    """A handler that holds every request until released (requests in flight at once)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()

    async def __call__(self, request: Request) -> Reply:
        await self.open.wait()
        return ok(request)


@pytest.mark.parametrize(("requests", "max_connections"), [(4, 4), (4, 8), (6, 2), (3, 1)])
async def test_concurrent_requests_take_one_connection_each_up_to_the_pool_size(
    connect: Connect, requests: int, max_connections: int
) -> None:
    gate = Gate()
    async with serving(gate) as server:
        client = connect(server.url, max_connections=max_connections)
        calls = [asyncio.create_task(get(client)) for _ in range(requests)]
        in_flight = min(requests, max_connections)
        try:
            await eventually_async(
                lambda: server.active, lambda n: n == in_flight, what="in flight"
            )
            assert server.connections == in_flight, "the rest wait for a free connection"
        finally:
            gate.open.set()
            answers = await asyncio.gather(*calls)
    assert [a.status for a in answers] == [200] * requests
    assert server.peak == in_flight
    assert server.connections == in_flight, "freed connections are reused by those waiting"


async def test_a_connection_the_server_closed_while_idle_is_not_used_again(
    connect: Connect,
) -> None:
    """The server answers, then closes the connection (Triton restarting, its idle timeout):
    the next call goes on a fresh connection and succeeds."""
    async with serving(lambda r: Reply(json_response(200, {}), close=r.connection == 0)) as s:
        client = connect(s.url)
        assert (await get(client)).status == 200
        # Whether the client has seen the close yet or not, the call must succeed.
        assert (await get(client)).status == 200
    assert [r.connection for r in s.requests][-1] == 1
    assert s.connections == 2


async def test_a_stale_keep_alive_connection_is_retried_once_on_a_fresh_one(
    connect: Connect,
) -> None:
    """The server drops the reused connection as the request arrives, before any answer
    (the close raced the request): the same request goes again on a new connection."""

    def drop_second(request: Request) -> Reply:
        if len(handled) == 1:
            handled.append(request)
            return Reply(close=True)
        handled.append(request)
        return ok(request)

    handled: list[Request] = []
    async with serving(drop_second) as server:
        client = connect(server.url)
        await get(client)
        assert (await get(client, "/v2/models/face/ready")).status == 200
    assert [(r.path, r.connection) for r in server.requests] == [
        ("/v2/health/live", 0),
        ("/v2/models/face/ready", 0),
        ("/v2/models/face/ready", 1),
    ]


async def test_a_pooled_connection_already_closing_is_retried_too(connect: Connect) -> None:
    """asyncio closes a transport on EOF at once but calls `connection_lost` one loop step
    later; a request taken from the pool in between must still get its one retry. Closing
    the pooled transport by hand puts the client in exactly that step."""
    async with serving(ok) as server:
        client = connect(server.url)
        await get(client)
        (pooled,) = client._idle
        assert pooled._transport is not None
        pooled._transport.close()  # what asyncio does on EOF; connection_lost comes later
        assert (await get(client)).status == 200
    assert server.connections == 2


async def test_a_connection_closed_after_part_of_the_answer_is_not_retried(
    connect: Connect,
) -> None:
    """Part of the response arrived, so the request reached the server: resending it could
    run it twice."""
    partial = response(200, b"{}" * 50)[:-40]

    def cut_second(request: Request) -> Reply:
        if len(server.requests) == 2:
            return Reply(partial, close=True)
        return ok(request)

    async with serving(cut_second) as server:
        client = connect(server.url)
        await get(client)
        with pytest.raises(TransportError, match="closed"):
            await get(client)
        assert len(server.requests) == 2, "no retry"
        assert (await get(client)).status == 200, "a later call works"


async def test_connection_close_from_the_server_is_honoured(connect: Connect) -> None:
    """The server says `Connection: close` but leaves the socket open: the client closes it
    and opens another for the next request."""
    close = response(200, b"{}", {"Connection": "close"})
    async with serving(lambda r: Reply(close)) as server:
        client = connect(server.url)
        await get(client)
        await get(client)
        await eventually_async(lambda: server.closed_by_client, what="client closed one")
    assert server.connections == 2
    assert 0 in server.closed_by_client


# --- error answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, b'{"error":"unknown model: \'nope\'"}', "unknown model: 'nope'"),
        (500, b'{"error":"out of memory"}', "out of memory"),
        (503, b"upstream unavailable", "upstream unavailable"),
        (400, b'{"detail":"x"}', '{"detail":"x"}'),
        (400, b'["a list"]', '["a list"]'),
        (404, b"", "no body"),
    ],
)
async def test_an_error_status_raises_with_the_servers_message(
    connect: Connect, status: int, body: bytes, message: str
) -> None:
    async with serving(lambda r: Reply(response(status, body))) as server:
        client = connect(server.url)
        with pytest.raises(TritonHttpError) as caught:
            await infer_echo(client)
        assert (await get(client)).status == status, "the connection stays usable"
    assert caught.type is TritonHttpError
    assert (caught.value.status, caught.value.message) == (status, message)
    assert server.connections == 1


def malformed(header: bytes, data: bytes = b"", length: str | None = None) -> bytes:
    """A 200 infer answer built by hand: `header` JSON, `data` after it."""
    size = str(len(header)) if length is None else length
    return response(200, header + data, {"Inference-Header-Content-Length": size})


def output(
    name: str = "out",
    datatype: str = "FP32",
    shape: tuple[int, ...] = (2,),
    size: int | None = None,
    data: list[int] | None = None,
) -> bytes:
    """An infer answer's JSON header describing one output (binary when `size` is given)."""
    described: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(shape)}
    if size is not None:
        described["parameters"] = {"binary_data_size": size}
    if data is not None:
        described["data"] = data
    return json.dumps({"outputs": [described]}).encode()


FLOATS = np.array([1.0, 2.0], dtype=np.float32).tobytes()

MALFORMED = {
    "header-longer-than-body": malformed(output(size=8), FLOATS, length="9999"),
    "header-length-zero": malformed(output(size=8), FLOATS, length="0"),
    "header-length-negative": malformed(output(size=8), FLOATS, length="-3"),
    "header-not-json": malformed(b"{not json", FLOATS),
    "header-without-outputs": malformed(b'{"model_name":"m"}'),
    "header-a-list": malformed(b'["outputs"]'),
    "output-past-the-body": malformed(output(size=8), FLOATS[:4]),
    "negative-data-size": malformed(output(size=-4), FLOATS),
    "unknown-datatype": malformed(output(datatype="BYTES", size=8), FLOATS),
    "size-not-the-shape": malformed(output(shape=(3,), size=8), FLOATS),
    "neither-data-nor-size": malformed(output()),
    "json-data-not-the-shape": malformed(output(data=[1, 2, 3])),
    "output-without-a-name": malformed(json.dumps({"outputs": [{"shape": [1]}]}).encode()),
    "requested-output-missing": malformed(output(name="other", size=8), FLOATS),
}


@pytest.mark.parametrize("answer", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_200_answer_that_cannot_be_read_is_malformed(
    connect: Connect, answer: bytes
) -> None:
    async with serving(lambda r: Reply(answer)) as server:
        with pytest.raises(MalformedResponseError) as caught:
            await connect(server.url).infer("m", [], ["out"], timeout_s=TIMEOUT_S)
    assert caught.value.status == 200


async def test_a_non_numeric_header_length_is_malformed_not_a_transport_failure(
    connect: Connect,
) -> None:
    answer = malformed(output(size=8), FLOATS, length="twelve")
    async with serving(lambda r: Reply(answer)) as server:
        with pytest.raises(MalformedResponseError):
            await connect(server.url).infer("m", [], ["out"], timeout_s=TIMEOUT_S)


def test_decode_outputs_reads_a_body_without_a_header_length_as_all_json() -> None:
    body = json.dumps({"outputs": [{"name": "y", "datatype": "INT32", "shape": [1, 2]}]})
    with pytest.raises(MalformedResponseError, match="unreadable output"):
        decode_outputs(Response(200, body.encode(), None), ["y"])
    body = json.dumps(
        {"outputs": [{"name": "y", "datatype": "INT32", "shape": [1, 2], "data": [7, 8]}]}
    )
    (array,) = decode_outputs(Response(200, body.encode(), None), ["y"]).values()
    assert array.dtype == np.int32
    np.testing.assert_array_equal(array, [[7, 8]])


# --- no answer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [b"SSH-2.0-OpenSSH_9.6\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 4],
    ids=["ssh-banner", "tls-hello"],
)
async def test_an_answer_that_is_not_http_is_a_transport_error(
    connect: Connect, garbage: bytes
) -> None:
    replies = iter([Reply(garbage), Reply(json_response(200, {}))])
    async with serving(lambda r: next(replies)) as server:
        client = connect(server.url)
        with pytest.raises(TransportError, match="malformed HTTP"):
            await get(client)
        assert (await get(client)).status == 200, "on a fresh connection"
    assert server.connections == 2


async def test_nothing_listening_is_a_transport_error(connect: Connect) -> None:
    client = connect(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransportError, match="cannot connect"):
        await get(client)


async def test_no_answer_in_time_is_a_timeout_and_the_connection_is_dropped(
    connect: Connect,
) -> None:
    never = asyncio.Event()

    async def first_never_answers(request: Request) -> Reply:
        if request.connection == 0:
            await never.wait()
        return ok(request)

    async with serving(first_never_answers) as server:
        client = connect(server.url)
        with pytest.raises(TimeoutError):
            await client.request("GET", "/v2/health/live", timeout_s=0.2)
        assert (await get(client)).status == 200
        assert [r.connection for r in server.requests] == [0, 1], "not reused after"


async def test_a_timeout_waiting_for_a_free_connection_leaves_the_pool_usable(
    connect: Connect,
) -> None:
    gate = Gate()
    async with serving(gate) as server:
        client = connect(server.url, max_connections=1)
        held = asyncio.create_task(get(client))
        try:
            await eventually_async(lambda: server.active, what="first request in flight")
            with pytest.raises(TimeoutError):
                await client.request("GET", "/v2/health/live", timeout_s=0.1)
        finally:
            gate.open.set()
            assert (await held).status == 200
        assert (await get(client)).status == 200
    assert len(server.requests) == 2, "the one that timed out never went out"
    assert server.connections == 1


# --- misuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://triton:8000",
        "http://triton:8000/v2",
        "http://:8000",
        "http://",
        "http://triton:8000?model=x",
        "http://triton:8000#x",
        "grpc://triton:8001",
        "http://triton:99999",
    ],
)
def test_an_address_other_than_http_host_port_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"http://host:port|[Pp]ort"):
        TritonHttpClient(url)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://triton:8000", "http://triton:8000"),
        ("http://triton:8000/", "http://triton:8000"),
        ("triton:8000", "http://triton:8000"),
        ("http://127.0.0.1", "http://127.0.0.1:80"),
    ],
)
def test_an_http_host_port_address_is_taken(url: str, address: str) -> None:
    assert TritonHttpClient(url).address == address


@pytest.mark.parametrize("size", [0, -1])
def test_a_pool_of_no_connections_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="max_connections"):
        TritonHttpClient("http://triton:8000", max_connections=size)


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.zeros((4, 6), dtype=np.float32)[:, ::2],
        lambda: np.asfortranarray(np.zeros((4, 6), dtype=np.float32)),
        lambda: np.zeros((6, 4), dtype=np.float32).T,
    ],
    ids=["strided", "fortran", "transposed"],
)
async def test_a_tensor_that_is_not_c_contiguous_is_refused_before_sending(
    connect: Connect, make: Callable[[], npt.NDArray[Any]]
) -> None:
    async with serving(echo_model) as server:
        with pytest.raises(ValueError, match="C-contiguous"):
            await connect(server.url).infer(
                "m", [Tensor("x", "FP32", make())], ["y"], timeout_s=TIMEOUT_S
            )
    assert server.requests == []


async def test_a_closed_client_refuses_calls_and_closes_its_connections(
    connect: Connect,
) -> None:
    async with serving(ok) as server:
        client = connect(server.url)
        await get(client)
        await client.close()
        with pytest.raises(TransportError, match="closed"):
            await get(client)
        await eventually_async(lambda: server.closed_by_client, what="connection closed")
    assert len(server.requests) == 1


async def test_closing_fails_a_request_in_flight(connect: Connect) -> None:
    gate = Gate()
    async with serving(gate) as server:
        client = connect(server.url)
        call = asyncio.create_task(get(client))
        try:
            await eventually_async(lambda: server.active, what="request in flight")
            await client.close()
        finally:
            gate.open.set()
            with pytest.raises(TransportError):
                await call


def test_credentials_in_the_address_are_refused() -> None:
    """Triton's API takes no credentials; `user:pw@` would end up in the Host header."""
    with pytest.raises(ValueError, match="http://host:port"):
        TritonHttpClient("http://user:pw@127.0.0.1:8000")


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("127.0.0.1:8001", ("127.0.0.1", 8001)),
        ("http://localhost", ("localhost", 80)),
        ("http://[::1]:8000/", ("::1", 8000)),
    ],
)
def test_triton_address_reads_host_and_port(url: str, address: tuple[str, int]) -> None:
    assert triton_address(url) == address


def test_an_ipv6_address_is_bracketed_in_the_host_header() -> None:
    assert TritonHttpClient("http://[::1]:8000").address == "http://[::1]:8000"
