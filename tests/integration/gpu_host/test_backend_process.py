"""`python -m gpu_host.backend`: the entry point systemd and the local host agent run."""

from __future__ import annotations

import asyncio
import functools
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import websockets

from gpu_host.triton.local import LocalTriton
from infra.local.ports import free_port
from tests.integration.gpu_host.dataplane_support import (
    REPO,
    TextImage,
    TokenIssuer,
    frame,
    recv_json,
    say_hello,
)
from tests.support.hermetic import clean_environ
from tests.support.waiting import eventually

pytestmark = pytest.mark.triton


def ready_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


async def talk_then_stop(
    port: int, issuer: TokenIssuer, jpeg: bytes, stop: Callable[[], None]
) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/inference") as ws:
        assert (await say_hello(ws, issuer.token("proc")))["type"] == "ready"
        await ws.send(frame(1, jpeg))
        assert (await recv_json(ws))["detections"]
        stop()
        notice = await recv_json(ws)
        assert (notice["type"], notice["kind"]) == ("notice", "shutdown")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001


def test_runs_from_the_environment_and_stops_on_sigterm(
    triton: LocalTriton, token_issuer: TokenIssuer, text_image: TextImage, tmp_path: Path
) -> None:
    """Given SPINUP_* settings in the environment, the process serves frames; on SIGTERM it
    tells connected clients, closes them with 1001 and exits."""
    port = free_port()
    env = clean_environ(
        SPINUP_TRITON_URL=triton.http_url,
        SPINUP_JWKS_URL=token_issuer.jwks_url,
        SPINUP_JWT_ISSUER=token_issuer.issuer,
        SPINUP_MODELS="text",
        SPINUP_USER_MODELS=str(tmp_path / "no-user-models" / "user_models.json"),
        SPINUP_ALLOWED_ORIGINS="",
        SPINUP_WORKERS="1",  # the default is the machine's cores; test_backend_workers has two
    )
    log = (tmp_path / "backend.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpu_host.backend", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def ready() -> int:
        assert proc.poll() is None, (tmp_path / "backend.log").read_text()
        return ready_status(port)

    try:
        eventually(ready, lambda status: status == 200, what="backend ready", timeout_s=60)
        stop = functools.partial(proc.send_signal, signal.SIGTERM)
        asyncio.run(talk_then_stop(port, token_issuer, text_image.jpeg, stop))
        # uvicorn re-raises the signal after its graceful shutdown; systemd counts a
        # SIGTERM exit as clean.
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (tmp_path / "backend.log").read_text()
    assert "backend ready" in output
    assert "Application shutdown complete" in output
