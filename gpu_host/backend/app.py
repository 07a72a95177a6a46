"""The backend's ASGI app: `/ws/inference`, `/health`, `/health/ready`, `/metrics`.

The lifespan creates the ONE shared Triton client of this process, opens the host store
the workers share (`settings.state_dir`; a private temporary one when unset), then brings the
backend up in the background (wait for Triton, make the start-up models loaded — Triton runs
with explicit model control —, one warm-up inference each) so that `/health` answers at once
and `/health/ready` turns 200 only when a frame of a default session would really be
inferred. Other served models load when a session asks (`model_loader`). One app is one
worker process (`gpu_host.backend.worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from gpu_host.backend.auth import HelloAuthenticator, TokenVerifier
from gpu_host.backend.breaker import CircuitBreaker
from gpu_host.backend.context import Backend
from gpu_host.backend.host_store import HostStore
from gpu_host.backend.metrics import Metrics
from gpu_host.backend.model_loader import ModelLoader, ModelUnavailableError
from gpu_host.backend.pipeline import FramePipeline, ServedModel
from gpu_host.backend.protocol import WS_PATH
from gpu_host.backend.reporter import REPORT_SIGNAL, DynamoHostRecord, Milestone, Reporter
from gpu_host.backend.sessions import SessionRegistry
from gpu_host.backend.settings import Settings
from gpu_host.backend.triton_gateway import TritonGateway
from gpu_host.backend.triton_shm import SharedSlots
from gpu_host.backend.worker_header import WorkerHeader
from gpu_host.backend.ws import inference_socket
from gpu_host.models.spec import load_processor
from lambdas.domain.tickets import TicketVerifier

log = logging.getLogger(__name__)

READY_POLL_S = 0.5
WARMUP_RETRY_S = 1.0
RECOVER_S = 5.0
"""How often a worker checks that Triton still holds the models it should."""


def create_app(
    settings: Settings | None = None,
    *,
    metrics_dir: Path | None = None,
    report_on_signal: bool = False,
) -> FastAPI:
    """The backend app; `settings` default to the environment (`SPINUP_*`). `metrics_dir`:
    the workers' Prometheus multiprocess directory, when this app is one of several.
    `report_on_signal`: REPORT_SIGNAL makes it report the host's session count (a worker
    process, whose lifespan runs in the main thread, the only one that can take signals)."""
    settings = settings or Settings()
    catalog = settings.catalog()
    startup = settings.startup_models()
    # Processors load here, not per request: a broken model module fails the start, loudly.
    served = {
        name: ServedModel(spec=catalog[name], processor=load_processor(catalog[name]))
        for name in settings.models
    }

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with _host_store(settings.state_dir) as store, contextlib.ExitStack() as stack:
            backend = _build_backend(settings, served, store, metrics_dir, startup)
            app.state.backend = backend
            backend.reporter.start()
            backend.reporter.milestone(Milestone.BACKEND_UP)
            if report_on_signal:
                loop = asyncio.get_running_loop()
                loop.add_signal_handler(REPORT_SIGNAL, _report_requested, backend)
                stack.callback(loop.remove_signal_handler, REPORT_SIGNAL)
            # The host's count, as this worker finds it (installed first: a request of the
            # supervisor's before this point was ignored, and this report reads later).
            # After a worker died, its replacement's start corrects the record too.
            backend.reporter.sessions_changed()
            bring_up = asyncio.create_task(_bring_up(backend, startup), name="bring-up")
            try:
                yield
            finally:
                bring_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bring_up
                await backend.sessions.shutdown_all()
                await backend.reporter.stop()
                await backend.gateway.close()

    app = FastAPI(
        title="spinup backend", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.add_api_websocket_route(WS_PATH, inference_socket)
    app.add_middleware(WorkerHeader)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        backend: Backend = app.state.backend
        state = backend.readiness
        body = {
            "ready": state.warmed_up,
            "models_loaded": state.models_loaded,
            "warmed_up": state.warmed_up,
            "models": list(settings.models),
            "startup_models": list(startup),
            "loaded": list(await backend.loader.loaded()),
            "breaker": backend.gateway.breaker.state.value,
            "sessions": await backend.sessions.count(),
            "worker": {"pid": os.getpid(), "sessions": backend.sessions.local_count},
        }
        return JSONResponse(body, status_code=200 if state.warmed_up else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        backend: Backend = app.state.backend
        body = await asyncio.to_thread(backend.metrics.exposition)  # reads files when shared
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app


@contextlib.contextmanager
def _host_store(state_dir: Path | None) -> Iterator[HostStore]:
    """The host store in `state_dir` (the supervisor's), or in a temporary directory of this
    app alone (an app run without the supervisor: tests, tools)."""
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spinup-")))
        store = HostStore.open(state_dir)
        stack.callback(store.close)
        yield store


def _build_backend(
    settings: Settings,
    served: dict[str, ServedModel],
    store: HostStore,
    metrics_dir: Path | None,
    startup: tuple[str, ...],
) -> Backend:
    metrics = Metrics(multiprocess_dir=metrics_dir)
    breaker = CircuitBreaker(
        failure_threshold=settings.breaker_failures, cooldown_s=settings.breaker_cooldown_s
    )
    gateway = TritonGateway(
        url=settings.triton_url,
        breaker=breaker,
        timeout_s=settings.infer_timeout_s,
        shared_slot_bytes=_largest_input(served) if settings.triton_shared_memory else None,
    )
    record = (
        DynamoHostRecord(
            table_name=settings.table_name,
            host_id=settings.host_id,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
        )
        if settings.table_name
        else None
    )
    reporter = Reporter(record, host=store, heartbeat_s=settings.heartbeat_s)
    pipeline = FramePipeline(
        models=served,
        gateway=gateway,
        metrics=metrics,
        budget_s=settings.frame_budget_ms / 1000,
        motion_threshold=settings.motion_threshold if settings.motion_gate else None,
    )

    async def warm(name: str) -> None:
        await pipeline.warm_up([name])

    return Backend(
        settings=settings,
        metrics=metrics,
        authenticator=_authenticator(settings, store),
        sessions=SessionRegistry(store=store, max_per_user=settings.max_sessions_per_user),
        reporter=reporter,
        gateway=gateway,
        pipeline=pipeline,
        loader=ModelLoader(
            store=store,
            triton=gateway,
            budget=settings.model_budget(),
            pinned=startup,
            load_timeout_s=settings.model_load_timeout_s,
            warm=warm,
            on_change=reporter.models_changed,
        ),
    )


def _largest_input(served: dict[str, ServedModel]) -> int | None:
    """Bytes of the largest one-item request's inputs: a shared-memory slot's size (a frame's
    request to any served model fits one; a larger batch of regions goes in the body)."""
    sizes = [
        SharedSlots.packed_size([tensor.nbytes for tensor in model.spec.inputs])
        for model in served.values()
    ]
    return max(sizes, default=None)


def _authenticator(settings: Settings, store: HostStore) -> HelloAuthenticator:
    secret = settings.ticket_secret
    return HelloAuthenticator(
        tokens=TokenVerifier(
            jwks_url=settings.jwks_url, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        ),
        tickets=None
        if secret is None
        # Single use host-wide: the replay cache is the store every worker shares.
        else TicketVerifier(
            secret=secret.get_secret_value(), host_id=settings.host_id, cache=store
        ),
        require_tickets=settings.require_tickets,
    )


REPORT_REQUESTED_LOG = "the supervisor asks for the host's session count (a worker died)"


def _report_requested(backend: Backend) -> None:
    log.info(REPORT_REQUESTED_LOG)
    backend.reporter.sessions_changed()


async def _bring_up(backend: Backend, names: tuple[str, ...]) -> None:
    """Wait for Triton, make the start-up models `names` loaded (Triton loads them at start
    given `--load-model`; here they are loaded when it did not), then warm them up; each step
    reported once, retried until done."""
    while True:
        if await backend.gateway.models_ready(()):  # Triton answers
            break
        await asyncio.sleep(READY_POLL_S)
    while True:
        try:
            await backend.loader.ensure(names)
            break
        except ModelUnavailableError as exc:
            log.warning("start-up models not loaded, retrying: %s", exc)
            await asyncio.sleep(WARMUP_RETRY_S)
    backend.readiness.models_loaded = True
    backend.reporter.milestone(Milestone.MODELS_LOADED)
    backend.reporter.models_changed()
    log.info("triton models ready: %s", list(names))
    while True:
        try:
            await backend.pipeline.warm_up(names)
            break
        except Exception as exc:  # any failure just means "not ready yet"
            log.warning("warm-up failed, retrying: %s", exc)
            await asyncio.sleep(WARMUP_RETRY_S)
    backend.readiness.warmed_up = True
    backend.reporter.milestone(Milestone.READY)
    log.info("backend ready")
    # Triton restarts (systemd's Restart=on-failure) with its start-up models at most: load
    # again what it lost, for the sessions still open and the next ones.
    while True:
        await asyncio.sleep(RECOVER_S)
        try:
            await backend.loader.recover()
        except ModelUnavailableError as exc:
            log.warning("models not recovered, retrying: %s", exc)
