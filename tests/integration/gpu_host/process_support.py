"""The backend as systemd runs it, for the integration tests: `python -m gpu_host.backend`,
a supervisor and its worker processes on one port (the fixture is `start_backend_process`).

Which worker holds a socket, or answered a request, is the `X-Spinup-Worker` header the
backend sends; the supervisor's workers are its children (`/proc/<pid>/task/<pid>/children`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import websockets

from gpu_host.backend.worker_header import HEADER
from infra.local.ports import free_port
from lambdas.domain.tickets import issue_ticket
from tests.integration.gpu_host.dataplane_support import (
    DATAPLANE_MODELS,
    REPO,
    TICKET_SECRET,
    TokenIssuer,
    recv_json,
    unique_user,
)
from tests.support.hermetic import clean_environ
from tests.support.waiting import eventually, eventually_async

HOST_ID = "gpu-0"


def fresh_ticket(user: str) -> str:
    """A socket ticket for `user`, as the control API issues one for each (re)connection."""
    return issue_ticket(
        TICKET_SECRET, user=user, session_id="c" * 32, host_id=HOST_ID, now=time.time()
    ).token


def worker_of(ws: websockets.ClientConnection) -> int:
    """The pid of the worker that accepted this socket."""
    assert ws.response is not None
    return int(ws.response.headers[HEADER])


class BackendProcess:
    """`python -m gpu_host.backend` with `SPINUP_*` `settings`, its output in `log_path`."""

    def __init__(self, issuer: TokenIssuer, log_path: Path, **settings: str) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = clean_environ(
            SPINUP_JWKS_URL=issuer.jwks_url,
            SPINUP_JWT_ISSUER=issuer.issuer,
            SPINUP_JWT_AUDIENCE=issuer.audience,
            SPINUP_MODELS=",".join(DATAPLANE_MODELS),
            SPINUP_USER_MODELS=str(log_path.parent / "no-user-models" / "user_models.json"),
            SPINUP_TICKET_SECRET=TICKET_SECRET,
            SPINUP_MAX_FRAME_BYTES="300000",
            **settings,
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/inference"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> BackendProcess:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gpu_host.backend", "--port", str(self.port)],
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def alive(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, f"the backend exited; its log:\n{self.log()}"
        return True

    def worker_pids(self) -> set[int]:
        """The supervisor's children: its workers."""
        self.alive()
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        return {int(pid) for pid in children.split()}

    def wait_workers(self, count: int, *, without: frozenset[int] = frozenset()) -> set[int]:
        """Wait until the supervisor has `count` workers, none of them in `without`."""
        return eventually(
            self.worker_pids,
            lambda pids: len(pids) == count and not pids & without,
            what=f"{count} workers, none of {sorted(without)}",
            timeout_s=30,
        )

    def get(self, path: str) -> tuple[int, int, Any]:
        """GET `path`: status, the worker that answered, and the body (JSON decoded)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                status, worker, body = r.status, r.headers[HEADER], r.read().decode()
        except urllib.error.HTTPError as error:
            status, worker, body = error.code, error.headers[HEADER], error.read().decode()
        try:
            return status, int(worker), json.loads(body)
        except ValueError:
            return status, int(worker), body

    def wait_ready(self, workers: int) -> None:
        """Every worker answers /health/ready with 200."""
        ready: set[int] = set()

        def probe() -> set[int]:
            self.alive()
            status, worker, _ = self.get("/health/ready")
            if status == 200:
                ready.add(worker)
            return ready & self.worker_pids()

        eventually(
            probe,
            lambda pids: len(pids) == workers,
            what=f"{workers} workers ready",
            timeout_s=90,
            interval_s=0.1,
            ignoring=(OSError,),
        )

    async def connect(self, worker: int | None = None) -> websockets.ClientConnection:
        """A socket accepted by `worker` (any when None): connections land where the kernel
        puts them, so those that land elsewhere are closed and made again."""

        async def attempt() -> websockets.ClientConnection | None:
            ws = await websockets.connect(self.ws_url)
            if worker is None or worker_of(ws) == worker:
                return ws
            await ws.close()
            return None

        connected = await eventually_async(
            attempt, what=f"a socket on worker {worker}", timeout_s=20, interval_s=0.01
        )
        assert connected is not None
        return connected

    async def session(
        self, worker: int | None = None, user: str | None = None
    ) -> websockets.ClientConnection:
        """A ready session (a fresh ticket's hello) on `worker`."""
        ws = await self.connect(worker)
        await ws.send(json.dumps({"type": "hello", "ticket": fresh_ticket(user or unique_user())}))
        ready = await recv_json(ws)
        assert ready["type"] == "ready", ready
        return ws

    def signal_supervisor(self, sig: signal.Signals) -> None:
        self.alive()
        assert self.proc is not None
        self.proc.send_signal(sig)

    def worker_signal(self, worker: int, sig: signal.Signals) -> None:
        """Send `sig` to one worker (and only to one of ours)."""
        assert worker in self.worker_pids(), f"{worker} is not a worker of {self.pid}"
        os.kill(worker, sig)

    def stop(self) -> int:
        """SIGTERM the supervisor and wait for it; its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
