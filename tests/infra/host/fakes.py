"""Stand-ins for what a GPU host talks to: the instance metadata service (IMDSv2) and the
backend's readiness endpoint, as real HTTP servers on loopback; and a recording launch hook."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gpu_host.bootstrap.lifecycle import Result

INSTANCE_ID = "i-0123456789abcdef0"


class FakeImds:
    """IMDSv2 as the docs describe it: PUT /latest/api/token (with a TTL header) gives a
    token; GET /latest/meta-data/<path> needs it (401 without or with an old one), 404 for
    an item this instance does not have.
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html"""

    def __init__(self, items: dict[str, str]) -> None:
        self.items = dict(items)
        self.tokens_issued = 0
        self._valid: set[str] = set()
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def expire_tokens(self) -> None:
        with self._lock:
            self._valid.clear()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                if self.path != "/latest/api/token" or not self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"
                ):
                    self._answer(400, "")
                    return
                with fake._lock:
                    token = f"token-{next(fake._serial)}"
                    fake._valid.add(token)
                    fake.tokens_issued += 1
                self._answer(200, token)

            def do_GET(self) -> None:
                with fake._lock:
                    authorized = self.headers.get("X-aws-ec2-metadata-token") in fake._valid
                if not authorized:
                    self._answer(401, "")
                    return
                prefix = "/latest/meta-data/"
                item = fake.items.get(self.path.removeprefix(prefix))
                if not self.path.startswith(prefix) or item is None:
                    self._answer(404, "Not Found")
                    return
                self._answer(200, item)

            def _answer(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler


class ReadyServer:
    """The backend's `/health/ready` (or Triton's `path`): 503 until `ready` is set, then 200."""

    def __init__(self, path: str = "/health/ready") -> None:
        self.ready = threading.Event()
        self.probes = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.probes += 1
                ok = self.path == path and server.ready.is_set()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class RecordingHook:
    """`lifecycle.LifecycleActions` that records what it was asked, in order."""

    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def heartbeat(self) -> None:
        with self.lock:
            self.calls.append("heartbeat")

    def complete(self, result: Result) -> None:
        with self.lock:
            self.calls.append(result.value)

    @property
    def heartbeats(self) -> int:
        with self.lock:
            return self.calls.count("heartbeat")

    @property
    def completions(self) -> list[str]:
        with self.lock:
            return [c for c in self.calls if c != "heartbeat"]
