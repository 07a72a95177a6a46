"""The control API app: the same FastAPI app under uvicorn (local mode) and Mangum (Lambda).

Clients and the token verifier are created here, once per process, and kept in `app.state`
(not in a lifespan: Mangum runs with `lifespan="off"`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lambdas.aws.clients import Clients, make_clients
from lambdas.control.auth import Authenticator, make_authenticator
from lambdas.control.errors import ApiError
from lambdas.control.plane import ControlPlane
from lambdas.control.routes import router
from lambdas.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    clients: Clients | None = None,
    clock: Callable[[], float] = time.time,
    authenticator: Authenticator | None = None,
) -> FastAPI:
    """`clients`, `clock` and `authenticator` default to the real ones; tests inject theirs."""
    app = FastAPI(
        title="Spinup control API",
        version="1",
        summary="Start, watch, keep running and stop the GPU instance.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.plane = ControlPlane(settings, clients or make_clients(settings), clock)
    app.state.authenticator = authenticator or make_authenticator(settings)
    app.include_router(router)
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(ClientError, _aws_unavailable)
    app.add_exception_handler(BotoCoreError, _aws_unavailable)
    return app


async def _api_error(request: Request, error: ApiError) -> JSONResponse:
    return JSONResponse({"detail": error.detail}, error.status_code, headers=error.headers)


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    """Starlette's own errors (unknown route, wrong method), said so a person can act."""
    where = f"{request.method} {request.url.path}"
    match error.status_code:
        case 404:
            detail = f"There is no {where}; the API is described at /api/docs."
        case 405:
            detail = f"{where} is not allowed; the API is described at /api/docs."
        case _:
            detail = str(error.detail)
    return JSONResponse({"detail": detail}, error.status_code, headers=error.headers)


def _field(location: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in location) or "request"


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = error.errors()
    detail = "; ".join(f"{_field(tuple(p.get('loc', ())))}: {p.get('msg')}" for p in problems)
    return JSONResponse(
        {"detail": f"Invalid request. {detail}", "errors": jsonable_encoder(problems)}, 422
    )


async def _aws_unavailable(request: Request, error: Exception) -> JSONResponse:
    log.exception("AWS call failed", exc_info=error)
    return JSONResponse(
        {"detail": "The control plane cannot reach AWS right now; try again in a minute."}, 503
    )
