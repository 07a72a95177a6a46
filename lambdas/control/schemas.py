"""The control API's response bodies (docs/architecture.md, "Control API"), as served in its
OpenAPI. No route takes a request body: a session's models are named in the WebSocket hello."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from lambdas.domain.model import Phase

SESSION_ID_PATTERN = r"^[0-9a-f]{32}$"


class SessionCreated(BaseModel):
    session_id: str
    phase: Phase
    status_url: str


class SessionInfo(BaseModel):
    session_id: str
    created_at: float
    expires_at: float
    host_id: str | None = Field(description="The GPU host it is placed on; null while waiting.")
    phase: Phase = Field(description="Its host's phase.")
    ws_url: str | None = Field(description="Its host's socket, once the host is ready.")


class StatusResponse(BaseModel):
    phase: Phase
    instance_state: str = Field(
        description="EC2's state of the newest session's host; 'none' without a session."
    )
    ws_url: str | None = Field(description="The newest session's socket, once ready.")
    eta_s: int | None = Field(description="Seconds until ready (estimate); 0 when ready.")
    stop_at: float | None = Field(
        description="Epoch seconds when the newest session's host stops unless it is used."
    )
    message: str
    sessions: list[SessionInfo] = Field(description="The caller's open sessions.")
    start_phases: dict[str, float] = Field(
        default_factory=dict,
        description="Seconds from the newest session's host start to each phase it reached: "
        "instance_running, backend_up, models_loaded, ready (its cold start, as measured).",
    )


class KeepaliveResponse(BaseModel):
    session_id: str
    phase: Phase
    stop_at: float | None


class TicketResponse(BaseModel):
    ticket: str = Field(
        description="A single-use socket ticket: send it as the WebSocket hello's 'ticket'."
    )
    ws_url: str = Field(description="The socket of the host the ticket is good for.")
    expires_at: int = Field(description="Epoch seconds after which the ticket is refused.")


class ReleaseResponse(BaseModel):
    session_id: str
    released: Literal[True] = True
    phase: Phase


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong and what to do about it.")


class ValidationErrorBody(BaseModel):
    detail: str
    errors: list[dict[str, Any]] = Field(description="Each invalid field, as pydantic reports it.")
