"""A lean asyncio client for Triton's HTTP API (KServe v2) with binary tensor data.

Why not `tritonclient`: its gRPC aio client cost 0.6–1 ms of CPU a call whatever the tensor
(protobuf building, HTTP/2 framing and flow control, a polling thread; docs/performance.md).
Here a call is one `writelines` of a request line, a small JSON header and the tensors' own
buffers (no copy), and one response parsed by llhttp (`httptools`, which uvicorn uses too);
outputs are NumPy views of the response body.

Protocols relied on:
- KServe v2 inference protocol (Triton's HTTP API): `POST /v2/models/{name}/infer`,
  `GET /v2/health/live`, `GET /v2/models/{name}/ready` (200 ready, 400 not), errors as
  `{"error": "..."}` with a 4xx/5xx status.
  https://github.com/kserve/kserve/blob/master/docs/predict-api/v2/required_api.md
- Triton's binary tensor data extension: the JSON header's length in
  `Inference-Header-Content-Length`, then each tensor's raw bytes in order, sized by
  `parameters.binary_data_size`; outputs come back the same way when asked for with
  `parameters.binary_data: true`.
  https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
- Triton's model repository extension: `POST /v2/repository/models/{name}/load|unload`.
  https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_model_repository.md
- Triton's system shared memory extension: an input may name a registered region, an offset
  and a size (`parameters.shared_memory_region`, `…_offset`, `…_byte_size`) instead of
  carrying data (`SharedTensor`; the regions themselves: `triton_shm`).
  https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_shared_memory.md

Connections: HTTP/1.1 keep-alive carries one request at a time, so concurrent requests take
one connection each from a pool of at most `max_connections`; a request that finds none free
waits for one (those waiting are bounded by the callers: the sessions' in-flight models).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import quote, urlsplit

import httptools
import numpy as np
import numpy.typing as npt
import orjson

log = logging.getLogger(__name__)

INFERENCE_HEADER: Final = b"inference-header-content-length"
DEFAULT_MAX_CONNECTIONS: Final = 64

DATATYPES: Final[dict[str, np.dtype[Any]]] = {
    name: np.dtype(numpy_name)
    for name, numpy_name in {
        "BOOL": "bool",
        "UINT8": "uint8",
        "UINT16": "uint16",
        "UINT32": "uint32",
        "UINT64": "uint64",
        "INT8": "int8",
        "INT16": "int16",
        "INT32": "int32",
        "INT64": "int64",
        "FP16": "float16",
        "FP32": "float32",
        "FP64": "float64",
    }.items()
}
"""Triton's tensor datatypes (the wire names) that map to a NumPy dtype; BYTES does not."""


def triton_address(url: str) -> tuple[str, int]:
    """Host and port of Triton's HTTP address, `http://host:port` (port 80 when left out;
    no scheme reads as http). Anything else raises `ValueError`: a path, query or credentials
    (Triton serves its API at the root, without them), or https (Triton's own server speaks
    plain HTTP; the backend reaches it on the host's loopback)."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        port = parts.port or 80
    except ValueError as exc:  # a port that is not a number, or out of range
        raise ValueError(f"Triton's HTTP address must be http://host:port, got {url!r}") from exc
    if (
        parts.scheme != "http"
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"Triton's HTTP address must be http://host:port, got {url!r}")
    return parts.hostname, port


class TransportError(Exception):
    """No answer from Triton: the connection was refused, reset or closed, or the answer was
    not HTTP."""


class TritonHttpError(Exception):
    """Triton answered with an error status; `message` is Triton's own text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class MalformedResponseError(TritonHttpError):
    """Triton answered 200 with a body this client cannot read as the outputs asked for."""

    def __init__(self, message: str) -> None:
        super().__init__(200, message)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    header_length: int | None
    """`Inference-Header-Content-Length`: the JSON part of a binary-data body (None: all)."""

    def error_message(self) -> str:
        """Triton's `{"error": ...}` text, or the body itself when it is not that."""
        try:
            message = json.loads(self.body).get("error")
        except (ValueError, AttributeError):
            message = None
        return str(message) if message else self.body.decode("utf-8", "replace") or "no body"


@dataclass(frozen=True, slots=True)
class Tensor:
    """One input tensor: its Triton name and datatype, and C-contiguous data."""

    name: str
    datatype: str
    array: npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class SharedTensor:
    """One input tensor already in a registered shared-memory region: no data in the body."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    region: str
    offset: int
    nbytes: int


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: one request at a time, its response parsed as it
    arrives (httptools' callbacks below)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._chunks: list[bytes] = []
        self._header_length: int | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self.reusable = True
        self.answered = False
        """Any byte of the current request's response arrived."""

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"malformed HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(TransportError(f"connection closed: {exc}" if exc else "connection closed"))

    # --- httptools callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == INFERENCE_HEADER:
            # Not a number: an impossible length, which `decode_outputs` refuses as malformed
            # (raising here would read as a broken connection).
            self._header_length = int(value) if value.isdigit() else -1

    def on_headers_complete(self) -> None:
        if not self._parser.should_keep_alive():
            self.reusable = False

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        chunks, self._chunks = self._chunks, []
        if waiter is None or waiter.done():
            self.reusable = False  # a response nobody waits for: the connection is out of step
            return
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        waiter.set_result(Response(self._parser.get_status_code(), body, self._header_length))

    # --- the client's side ------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self.reusable and self._transport is not None and not self._transport.is_closing()

    def send(self, parts: Sequence[bytes | memoryview]) -> asyncio.Future[Response]:
        self.answered = False  # before the check: a closed connection answered nothing of this
        transport = self._transport
        if transport is None or not self.usable:
            raise TransportError("connection closed")
        self._chunks = []
        self._header_length = None
        self._waiter = asyncio.get_running_loop().create_future()
        transport.writelines(parts)
        return self._waiter

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class TritonHttpClient:
    """Triton's HTTP API over a bounded pool of keep-alive connections."""

    def __init__(self, url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        """`url`: `http://host:port` (`triton_address`)."""
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self._max_connections = max_connections
        self._host, self._port = triton_address(url)
        name = f"[{self._host}]" if ":" in self._host else self._host  # IPv6 in brackets
        self._netloc = f"{name}:{self._port}"
        self._host_header = f"Host: {self._netloc}\r\n"
        self._idle: list[_Connection] = []
        """Free connections, newest last (reused first: the likeliest to be alive)."""
        self._slots = asyncio.Semaphore(max_connections)
        self._all: set[_Connection] = set()
        self._closed = False

    @property
    def max_connections(self) -> int:
        """Requests in flight at most (one per connection)."""
        return self._max_connections

    @property
    def address(self) -> str:
        return f"http://{self._netloc}"

    async def close(self) -> None:
        self._closed = True
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()

    async def request(
        self,
        method: str,
        path: str,
        *,
        timeout_s: float,
        body: Sequence[bytes | memoryview] = (),
        headers: str = "",
    ) -> Response:
        """One request; raises `TransportError` without an answer and `TimeoutError` past
        `timeout_s` (connecting included). `headers`: extra header lines, each ending CRLF."""
        length = sum(len(part) if isinstance(part, bytes) else part.nbytes for part in body)
        head = (
            f"{method} {path} HTTP/1.1\r\n{self._host_header}"
            f"Content-Length: {length}\r\n{headers}\r\n"
        ).encode("latin-1")
        parts = [head, *body]
        async with asyncio.timeout(timeout_s), self._slots:
            connection, reused = await self._acquire()
            try:
                response = await connection.send(parts)
            except TransportError:
                self._discard(connection)
                if not reused or connection.answered:
                    raise
                # Triton closed an idle keep-alive connection (a restart, its idle timeout)
                # before this request reached it: once more, on a fresh connection.
                connection, _ = await self._acquire(fresh=True)
                try:
                    response = await connection.send(parts)
                except BaseException:
                    self._discard(connection)
                    raise
            except BaseException:  # cancelled or timed out mid-request: out of step
                self._discard(connection)
                raise
            if connection.reusable and not self._closed:
                self._idle.append(connection)
            else:
                self._discard(connection)
            return response

    async def infer(
        self,
        model: str,
        inputs: Sequence[Tensor | SharedTensor],
        outputs: Sequence[str],
        *,
        timeout_s: float,
    ) -> dict[str, npt.NDArray[Any]]:
        """Run `model` on `inputs` (each with its batch dimension, if the model has one) and
        return the named outputs as read-only arrays over the response body. Raises
        `TritonHttpError` when Triton refuses, `TransportError` / `TimeoutError` otherwise."""
        header = orjson.dumps(
            {
                "inputs": [_input_header(tensor) for tensor in inputs],
                "outputs": [
                    {"name": name, "parameters": {"binary_data": True}} for name in outputs
                ],
            }
        )
        body: list[bytes | memoryview] = [header]
        for tensor in inputs:
            if isinstance(tensor, SharedTensor):
                continue
            if not tensor.array.flags.c_contiguous:
                raise ValueError(f"{model}.{tensor.name}: tensor data must be C-contiguous")
            body.append(tensor.array.data.cast("B"))
        response = await self.request(
            "POST",
            f"/v2/models/{quote(model, safe='')}/infer",
            timeout_s=timeout_s,
            body=body,
            headers=f"Inference-Header-Content-Length: {len(header)}\r\n",
        )
        if response.status != 200:
            raise TritonHttpError(response.status, response.error_message())
        return decode_outputs(response, outputs)

    async def _acquire(self, *, fresh: bool = False) -> tuple[_Connection, bool]:
        """A free connection (True: reused from the pool) or a new one."""
        if self._closed:
            raise TransportError("client closed")
        while self._idle and not fresh:
            connection = self._idle.pop()
            if connection.usable:
                return connection, True
            self._discard(connection)
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(_Connection, self._host, self._port)
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.address}: {exc}") from exc
        self._all.add(connection)
        return connection, False

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._all.discard(connection)


def _input_header(tensor: Tensor | SharedTensor) -> dict[str, Any]:
    """An input's entry in the request's JSON header."""
    if isinstance(tensor, SharedTensor):
        return {
            "name": tensor.name,
            "shape": list(tensor.shape),
            "datatype": tensor.datatype,
            "parameters": {
                "shared_memory_region": tensor.region,
                "shared_memory_offset": tensor.offset,
                "shared_memory_byte_size": tensor.nbytes,
            },
        }
    return {
        "name": tensor.name,
        "shape": list(tensor.array.shape),
        "datatype": tensor.datatype,
        "parameters": {"binary_data_size": tensor.array.nbytes},
    }


def decode_outputs(response: Response, names: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
    """The named outputs of a 200 infer response: binary data as views of the body, JSON
    `data` (a server that ignored `binary_data`) as new arrays."""
    body = response.body
    header_length = len(body) if response.header_length is None else response.header_length
    if not 0 < header_length <= len(body):
        raise MalformedResponseError(f"inference header length {header_length} of {len(body)}")
    try:
        header = orjson.loads(body[:header_length])
        described = header["outputs"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedResponseError(f"unreadable inference header: {exc}") from exc
    arrays: dict[str, npt.NDArray[Any]] = {}
    offset = header_length
    for output in described:
        try:
            name, shape, datatype = output["name"], tuple(output["shape"]), output["datatype"]
            dtype = DATATYPES[datatype]
            size = (output.get("parameters") or {}).get("binary_data_size")
            if size is None:
                array = np.asarray(output["data"], dtype=dtype).reshape(shape)
            else:
                if not isinstance(size, int) or size < 0 or offset + size > len(body):
                    raise MalformedResponseError(f"output {name!r} runs past the body")
                array = np.frombuffer(
                    body, dtype=dtype, count=size // dtype.itemsize, offset=offset
                ).reshape(shape)
                offset += size
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponseError(f"unreadable output {output!r:.200}: {exc}") from exc
        arrays[name] = array
    missing = [name for name in names if name not in arrays]
    if missing:
        raise MalformedResponseError(f"response lacks output(s) {missing}")
    return arrays
