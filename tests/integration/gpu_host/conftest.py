"""Real parts for the data plane's integration tests.

- one `tritonserver` (the nvidia-pytriton wheel's, on the CPU) for the whole session;
- backends under a real uvicorn server in a thread, on a socket bound to port 0;
- a token issuer with an RSA key made here and its JWKS served over real HTTP
  (PyJWT refuses `file://` JWKS URLs on purpose).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from gpu_host.triton.local import LocalTriton
from infra.local.ports import free_port
from tests.integration.gpu_host.dataplane_support import (
    DATAPLANE_MODELS,
    TICKET_SECRET,
    BackendFactory,
    RunningBackend,
    TextImage,
    TokenIssuer,
    backend_settings,
    plain_jpeg,
    render_text_image,
    running_triton,
    serving_issuer,
)
from tests.integration.gpu_host.process_support import BackendProcess


@pytest.fixture(scope="session")
def token_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIssuer]:
    with serving_issuer(tmp_path_factory.mktemp("jwks")) as issuer:
        yield issuer


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTriton]:
    """The real tritonserver on the CPU with the `local` repository of the text detector (the
    data plane's machinery needs one real model; tests/integration/models has them all)."""
    with running_triton(
        tmp_path_factory.mktemp("triton"), models=DATAPLANE_MODELS, user_models=None
    ) as server:
        yield server


@pytest.fixture(scope="module")
def backend(token_issuer: TokenIssuer, triton: LocalTriton) -> Iterator[RunningBackend]:
    """One ready backend on the shared Triton, for a test module."""
    running = RunningBackend(backend_settings(token_issuer, triton_url=triton.http_url))
    running.start()
    running.wait_ready()
    yield running
    running.stop()


@pytest.fixture(scope="module", params=[True, False], ids=["tickets-required", "local-mode"])
def ticket_backend(
    request: pytest.FixtureRequest, token_issuer: TokenIssuer
) -> Iterator[RunningBackend]:
    """A backend that verifies socket tickets, requiring them (as the CDK app deploys it) or
    also taking sign-in tokens (the local mode). No Triton: a hello needs none."""
    running = RunningBackend(
        backend_settings(
            token_issuer,
            triton_url=f"http://127.0.0.1:{free_port()}",
            ticket_secret=TICKET_SECRET,
            require_tickets=request.param,
        )
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def start_backend(token_issuer: TokenIssuer) -> Iterator[BackendFactory]:
    """Start backends with settings overrides; every one is stopped after the test."""
    started: list[RunningBackend] = []

    def start(*, wait_ready: bool = True, **overrides: Any) -> RunningBackend:
        running = RunningBackend(backend_settings(token_issuer, **overrides))
        started.append(running)
        running.start()
        if wait_ready:
            running.wait_ready()
        return running

    yield start
    for running in started:
        running.stop()


class BackendProcessFactory(Protocol):
    """The `start_backend_process` fixture."""

    def __call__(self, *, workers: int, **settings: str) -> BackendProcess: ...


@pytest.fixture
def start_backend_process(
    token_issuer: TokenIssuer, triton: LocalTriton, tmp_path: Path
) -> Iterator[BackendProcessFactory]:
    """Start `python -m gpu_host.backend` with `workers` on the shared Triton (and `SPINUP_*`
    `settings`), ready; every one is stopped after the test."""
    started: list[BackendProcess] = []

    def start(*, workers: int, **settings: str) -> BackendProcess:
        backend = BackendProcess(
            token_issuer,
            tmp_path / f"backend-{len(started)}.log",
            SPINUP_TRITON_URL=triton.http_url,
            SPINUP_WORKERS=str(workers),
            **settings,
        )
        started.append(backend.start())
        backend.wait_ready(workers)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture(scope="session")
def text_image() -> TextImage:
    return render_text_image()


@pytest.fixture(scope="session")
def blank_jpeg() -> bytes:
    return plain_jpeg()
