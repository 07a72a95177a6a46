"""Real parts for the served-model tests: ONE tritonserver (CPU) with every zoo model and a
user's YOLOv8 export, and ONE backend serving them all, for the whole folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_host.triton.local import LocalTriton
from tests.integration.gpu_host.dataplane_support import (
    BackendFactory,
    RunningBackend,
    TokenIssuer,
    backend_settings,
    running_triton,
    serving_issuer,
)
from tests.integration.models.models_support import BUILTIN, YOLO_NAME, declare_user_model

SERVED = (*BUILTIN, YOLO_NAME)
GENEROUS_BUDGET_MS = 20_000.0
"""Accuracy tests must not lose a result to a busy 2-core machine; the budget rule has its
own test."""


@pytest.fixture(scope="session")
def token_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIssuer]:
    with serving_issuer(tmp_path_factory.mktemp("jwks")) as issuer:
        yield issuer


@pytest.fixture(scope="session")
def user_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory holding a user's YOLOv8 export and its `user_models.json`."""
    return declare_user_model(tmp_path_factory.mktemp("user-models"))


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory, user_models: Path) -> Iterator[LocalTriton]:
    with running_triton(
        tmp_path_factory.mktemp("triton"), models=SERVED, user_models=user_models
    ) as server:
        yield server


@pytest.fixture(scope="session")
def backend(
    token_issuer: TokenIssuer, triton: LocalTriton, user_models: Path
) -> Iterator[RunningBackend]:
    """The backend serving every model; sessions pick theirs in the hello."""
    running = RunningBackend(
        backend_settings(
            token_issuer,
            triton_url=triton.http_url,
            models=SERVED,
            user_models=user_models,
            frame_budget_ms=GENEROUS_BUDGET_MS,
            max_frame_bytes=2_000_000,
        )
    )
    running.start()
    running.wait_ready(timeout_s=120)
    yield running
    running.stop()


@pytest.fixture
def start_backend(
    token_issuer: TokenIssuer, triton: LocalTriton, user_models: Path
) -> Iterator[BackendFactory]:
    """Another backend on the same Triton, with settings overrides; stopped after the test."""
    started: list[RunningBackend] = []

    def start(*, wait_ready: bool = True, **overrides: object) -> RunningBackend:
        settings = {"triton_url": triton.http_url, "user_models": user_models, **overrides}
        running = RunningBackend(backend_settings(token_issuer, **settings))
        started.append(running)
        running.start()
        if wait_ready:
            running.wait_ready(timeout_s=120)
        return running

    yield start
    for running in started:
        running.stop()
