"""A tiny scripted HTTP/1.1 server on loopback: the test double behind the Triton HTTP client
and gateway tests (tests/unit/gpu_host/test_triton_http.py, test_triton_gateway.py).

Each request is read whole (request line, headers, `Content-Length` body) and handed to the
test's handler, which says what bytes go back and whether the server then closes the
connection; a handler may await an event first (a server that is slow, or never answers).
The server counts the connections it accepted and which of them the client closed, so tests
can assert how the client pools them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gpu_host.backend.triton_http import DATATYPES

WIRE_NAMES = {dtype: name for name, dtype in DATATYPES.items()}
"""NumPy dtype -> Triton's datatype name."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    connection: int
    """Which accepted connection it came on (0 = the first)."""


@dataclass(frozen=True)
class Reply:
    data: bytes = b""
    """Raw bytes to write (anything: a response, part of one, garbage)."""
    close: bool = False
    """Close the connection after writing `data`."""


Handler = Callable[[Request], Reply | Awaitable[Reply]]


def response(status: int = 200, body: bytes = b"", headers: Mapping[str, str] = {}) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_response(status: int, value: Any) -> bytes:
    return response(status, json.dumps(value).encode(), {"Content-Type": "application/json"})


def infer_response(outputs: Mapping[str, npt.NDArray[Any]], *, binary: bool = True) -> bytes:
    """Triton's answer to an infer request: outputs as binary data (after a JSON header whose
    length is `Inference-Header-Content-Length`) or as JSON `data`."""
    described = []
    for name, array in outputs.items():
        output: dict[str, Any] = {
            "name": name,
            "datatype": WIRE_NAMES[array.dtype],
            "shape": list(array.shape),
        }
        if binary:
            output["parameters"] = {"binary_data_size": array.nbytes}
        else:
            output["data"] = array.ravel().tolist()
        described.append(output)
    header = json.dumps({"model_name": "m", "outputs": described}).encode()
    if not binary:
        return response(200, header, {"Content-Type": "application/json"})
    data = b"".join(np.ascontiguousarray(a).tobytes() for a in outputs.values())
    return response(200, header + data, {"Inference-Header-Content-Length": str(len(header))})


@dataclass(frozen=True)
class InferRequest:
    """An infer request's JSON header and its input tensors, as the server reads them."""

    header: dict[str, Any]
    inputs: dict[str, npt.NDArray[Any]]


def read_infer(request: Request) -> InferRequest:
    """Decode a binary-data infer request (what Triton does with it)."""
    length = int(request.headers["inference-header-content-length"])
    header = json.loads(request.body[:length])
    inputs, offset = {}, length
    for tensor in header["inputs"]:
        size = tensor["parameters"]["binary_data_size"]
        dtype = DATATYPES[tensor["datatype"]]
        raw = request.body[offset : offset + size]
        inputs[tensor["name"]] = np.frombuffer(raw, dtype).reshape(tensor["shape"])
        offset += size
    assert offset == len(request.body), "bytes after the last tensor"
    return InferRequest(header, inputs)


class FakeHttpServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.connections = 0
        """Connections accepted so far."""
        self.closed_by_client: set[int] = set()
        """Connections on which the client closed its side."""
        self.active = 0
        """Requests in the handler right now; `peak`: the most at once."""
        self.peak = 0
        self.url = ""
        """`http://127.0.0.1:port`, once started."""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> FakeHttpServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:  # handlers still waiting (a server that never answers)
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        index, self.connections = self.connections, self.connections + 1
        try:
            while (request := await _read_request(reader, index)) is not None:
                self.requests.append(request)
                self.active += 1
                self.peak = max(self.peak, self.active)
                try:
                    reply = self.handler(request)
                    if inspect.isawaitable(reply):
                        reply = await reply
                finally:
                    self.active -= 1
                writer.write(reply.data)
                await writer.drain()
                if reply.close:
                    return
            self.closed_by_client.add(index)
        except ConnectionError:
            self.closed_by_client.add(index)
        except asyncio.CancelledError:
            pass  # stop(): a handler still waiting (asyncio logs a cancelled callback task)
        finally:
            writer.close()
            self._tasks.discard(task)


async def _read_request(reader: asyncio.StreamReader, connection: int) -> Request | None:
    """The next request on the connection, or None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    line, *fields = head.decode("latin-1").split("\r\n")[:-2]
    method, path, version = line.split(" ")
    headers = {}
    for field in fields:
        name, _, value = field.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, version, headers, body, connection)


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[FakeHttpServer]:
    server = await FakeHttpServer(handler).start()
    try:
        yield server
    finally:
        await server.stop()
