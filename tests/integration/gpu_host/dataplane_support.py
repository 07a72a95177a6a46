"""Helpers for the data plane's integration tests (the fixtures are in conftest.py); the
served-model tests reuse them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import io
import json
import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import matplotlib
import websockets
from PIL import Image, ImageDraw, ImageFont

from gpu_host.backend.app import create_app
from gpu_host.backend.context import Backend
from gpu_host.backend.protocol import pack_frame
from gpu_host.backend.server import BackendServer, server_config
from gpu_host.backend.settings import Settings
from gpu_host.triton.local import LocalTriton
from infra.local.issuer import DevIssuer
from infra.local.ports import free_port
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[3]
TRITON_VENV = REPO / ".venv-triton"
DATAPLANE_MODELS = ("text",)
"""What these tests' Triton and backends serve."""
TICKET_SECRET = "test-ticket-secret-of-at-least-32-bytes"
"""What the control API would sign socket tickets with (lambdas.domain.tickets)."""


def local_triton(
    run_dir: Path, *, models: Sequence[str], user_models: Path | None, **options: Any
) -> LocalTriton:
    """The real tritonserver on the CPU for `models`, on free ports, not started yet."""
    return LocalTriton(
        run_dir=run_dir,
        triton_venv=TRITON_VENV,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        models=tuple(models),
        user_models=user_models,
        **options,
    )


@contextlib.contextmanager
def running_triton(
    run_dir: Path, *, models: Sequence[str], user_models: Path | None, **options: Any
) -> Iterator[LocalTriton]:
    """`local_triton`, started, and stopped on the way out."""
    server = local_triton(run_dir, models=models, user_models=user_models, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


FONT = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"


class TokenIssuer(DevIssuer):
    """The development issuer with a fixed name and key id; `jwks_url` serves its keys."""

    def __init__(self, jwks_url: str) -> None:
        super().__init__(issuer="https://issuer.test", audience="spinup", kid="test-key")
        self.jwks_url = jwks_url

    def token(
        self, sub: str | None = "ann", *, key: Any = None, kid: str | None = None, **claims: Any
    ) -> str:
        """A token for `sub`, valid 10 minutes; a claim set to None is left out."""
        return self.issue(sub, ttl_s=600, key=key, kid=kid, **claims)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def serving_issuer(www: Path) -> Iterator[TokenIssuer]:
    """A token issuer whose JWKS is served over real HTTP from `www` (PyJWT refuses
    `file://` JWKS URLs on purpose)."""
    handler = functools.partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    issuer = TokenIssuer(f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json")
    (www / ".well-known").mkdir()
    (www / ".well-known" / "jwks.json").write_text(json.dumps(issuer.jwks()))
    thread = threading.Thread(target=server.serve_forever, name="jwks", daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()


def backend_settings(issuer: TokenIssuer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "jwks_url": issuer.jwks_url,
        "jwt_issuer": issuer.issuer,
        "jwt_audience": issuer.audience,
        "max_frame_bytes": 300_000,
        "max_frame_pixels": 1920 * 1080,
        "breaker_failures": 1,
        "breaker_cooldown_s": 0.3,
        "models": DATAPLANE_MODELS,
        # As in the local mode: tickets verified, sign-in tokens still taken.
        "ticket_secret": TICKET_SECRET,
        "user_models": None,
    }
    values.update(overrides)
    return Settings(**values)


class RunningBackend:
    """The real app under a real uvicorn server, in a thread of this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        config = server_config(
            self.app, settings, host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = BackendServer(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, name="backend", daemon=True
        )

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/inference"

    @property
    def state(self) -> Backend:
        backend: Backend = self.app.state.backend
        return backend

    def start(self) -> RunningBackend:
        self._thread.start()

        def started() -> bool:
            assert self._thread.is_alive(), "the backend's server thread ended"
            return bool(self.server.started)

        eventually(started, what="backend started", interval_s=0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()

    def get(self, path: str) -> tuple[int, Any]:
        """GET `path`: status and body (JSON decoded when it is JSON)."""
        try:
            with urllib.request.urlopen(self.http_url + path, timeout=5) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode()
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def wait_ready(self, timeout_s: float = 60) -> None:
        eventually(
            lambda: self.get("/health/ready"),
            lambda response: response[0] == 200,
            what="backend ready (GET /health/ready → 200)",
            timeout_s=timeout_s,
            interval_s=0.1,
        )


class BackendFactory(Protocol):
    """The `start_backend` fixture: a started backend with settings overrides."""

    def __call__(self, *, wait_ready: bool = True, **overrides: Any) -> RunningBackend: ...


@dataclass(frozen=True)
class TextImage:
    jpeg: bytes
    box: tuple[float, float, float, float]
    """Where the ink is, normalized to the frame."""


def render_text_image(text: str = "SPINUP 42") -> TextImage:
    """Big black text on white, 640×480, as a camera JPEG."""
    image = Image.new("RGB", (640, 480), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 72)
    x1, y1, x2, y2 = draw.textbbox((60, 190), text, font=font)
    draw.text((60, 190), text, fill="black", font=font)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return TextImage(jpeg=buf.getvalue(), box=(x1 / 640, y1 / 480, x2 / 640, y2 / 480))


def plain_jpeg(width: int = 320, height: int = 240) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 160)).save(buf, "JPEG")
    return buf.getvalue()


def frame(frame_id: int, jpeg: bytes, capture_us: int | None = None) -> bytes:
    return pack_frame(frame_id, frame_id * 1000 if capture_us is None else capture_us, jpeg)


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the area of `b`: how much of `b` the box `a` covers."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / ((b[2] - b[0]) * (b[3] - b[1]))


async def recv_json(ws: websockets.ClientConnection, wait_s: float = 20) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), wait_s)
    assert isinstance(message, str), f"expected a text message, got {message!r:.80}"
    decoded: dict[str, Any] = json.loads(message)
    return decoded


async def say_hello(
    ws: websockets.ClientConnection, token: str | None, models: list[str] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "hello", "token": token}
    if models is not None:
        message["models"] = models
    await ws.send(json.dumps(message))
    return await recv_json(ws)


async def close_code(ws: websockets.ClientConnection, wait_s: float = 10) -> int | None:
    """Wait for the server to close the socket; return its close code."""
    return (await closed_with(ws, wait_s))[0]


async def closed_with(
    ws: websockets.ClientConnection, wait_s: float = 10
) -> tuple[int | None, str]:
    """Wait for the server to close the socket; return its close code and reason."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), wait_s)
    except websockets.ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")


def unique_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


class FaultyTcpProxy:
    """A TCP relay in front of Triton whose link the test can cut and restore — an
    injected network fault between the backend and Triton."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until `restore`."""
        with self._lock:
            self._cut = True
            for sock in self._open:
                _close(sock)
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:
                    _close(client)
                    continue
                try:
                    upstream = socket.create_connection(self._target, timeout=2)
                except OSError:
                    _close(client)
                    continue
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
