"""The routes of the control API (docs/architecture.md). Thin: the work is in `ControlPlane`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lambdas.control.auth import Authenticator
from lambdas.control.plane import ControlPlane
from lambdas.control.schemas import (
    SESSION_ID_PATTERN,
    ErrorBody,
    KeepaliveResponse,
    ReleaseResponse,
    SessionCreated,
    StatusResponse,
    TicketResponse,
    ValidationErrorBody,
)

_bearer = HTTPBearer(
    auto_error=False, description="An access token of the configured issuer (Cognito)."
)


def _plane(request: Request) -> ControlPlane:
    plane: ControlPlane = request.app.state.plane
    return plane


def _user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.user_of(request, credentials.credentials if credentials else None)


Plane = Annotated[ControlPlane, Depends(_plane)]
User = Annotated[str, Depends(_user)]
SessionId = Annotated[
    str,
    Path(pattern=SESSION_ID_PATTERN, description="The id POST /api/sessions returned."),
]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    answers: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorBody} for code in (401, 503, *codes)
    }
    answers[422] = {"model": ValidationErrorBody}
    return answers


router = APIRouter(prefix="/api", tags=["control"])


@router.post(
    "/sessions",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_errors(400, 429),
    summary="Start: open a session and start the GPU instance if it is stopped",
)
def open_session(plane: Plane, user: User) -> SessionCreated:
    return plane.open_session(user)


@router.get("/status", responses=_errors(), summary="Phase, ETA, stop time and your sessions")
def get_status(plane: Plane, user: User) -> StatusResponse:
    return plane.status(user)


@router.post(
    "/sessions/{session_id}/keepalive",
    responses=_errors(403, 404, 409),
    summary="Keep running: push the idle stop back",
)
def keepalive(plane: Plane, user: User, session_id: SessionId) -> KeepaliveResponse:
    return plane.keepalive(user, session_id)


@router.post(
    "/sessions/{session_id}/ticket",
    responses=_errors(403, 404, 409),
    summary="A single-use ticket for one WebSocket hello to the session's host",
)
def ticket(plane: Plane, user: User, session_id: SessionId) -> TicketResponse:
    return plane.ticket(user, session_id)


@router.delete(
    "/sessions/{session_id}",
    responses=_errors(403, 404),
    summary="Stop: release the session; the instance stops when none is left",
)
def release(plane: Plane, user: User, session_id: SessionId) -> ReleaseResponse:
    return plane.release(user, session_id)
