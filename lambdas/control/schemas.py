"""The control API's request and response bodies (DESIGN §3), as served in its OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lambdas.domain.model import Phase

MAX_MODELS = 16
SESSION_ID_PATTERN = r"^[0-9a-f]{32}$"

ModelName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=32),
    Field(description="A served model's name: lowercase letters, digits, '_' or '-'."),
]


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[ModelName] = Field(
        default_factory=list,
        max_length=MAX_MODELS,
        description="Models this session will use (the WebSocket hello names them again).",
    )


class SessionCreated(BaseModel):
    session_id: str
    phase: Phase
    status_url: str


class SessionInfo(BaseModel):
    session_id: str
    created_at: float
    expires_at: float


class StatusResponse(BaseModel):
    phase: Phase
    instance_state: str = Field(description="EC2's state name, or 'missing'.")
    ws_url: str | None
    eta_s: int | None = Field(description="Seconds until ready (estimate); 0 when ready.")
    stop_at: float | None = Field(
        description="Epoch seconds when the running instance stops unless it is used."
    )
    message: str
    sessions: list[SessionInfo] = Field(description="The caller's open sessions.")


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
