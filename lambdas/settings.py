"""The control plane's settings: one validated model, read once per process.

Every field is an environment variable with the prefix `SPINUP_` (`SPINUP_IDLE_AFTER_DISCONNECT_S`,
…). The Lambda functions and the local mode read the same model, so a setting means the same
thing everywhere. This model is the one definition of each default: the CDK app
(`infra.stacks.control_stack`) passes the Lambdas what it reads here, and docs/architecture.md
names them.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lambdas.domain import tickets
from lambdas.domain.routing import WS_HOST_SUFFIX
from lambdas.settings_types import InstanceTypes, TicketSecret

DEFAULT_INSTANCE_TYPES: Final = ("g4dn.xlarge", "g5.xlarge", "g6.xlarge")
"""Cheapest first: a T4 (g4dn) runs the five models at 320×240 with room to spare; A10G (g5)
and L4 (g6) are the fallbacks when a zone has no g4dn capacity. The CDK app deploys this list
unless `spinup:instanceTypes` says otherwise."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SPINUP_", frozen=True, extra="ignore", populate_by_name=True
    )

    table_name: str = Field(min_length=3, max_length=255)
    group_name: str = Field(min_length=1, max_length=255)
    """The GPU fleet's Auto Scaling group: hosts are found through it, never wired in."""
    # Lambda sets AWS_REGION itself; the prefixed name wins where both exist.
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("SPINUP_AWS_REGION", "AWS_REGION")
    )
    aws_endpoint_url: str | None = None
    """Only for the local mode (moto); empty in AWS."""
    ws_base_url: str = Field(default="", pattern=r"^(wss?://[^?#]+[^/?#])?$")
    """Where the browser's sockets go, without the host: a session on host H connects to
    `{ws_base_url}/{H}/inference` (`ws_url_for`), which CloudFront (or the local web front)
    routes to H. Empty: no sockets here (tickets answer 503)."""
    kvs_arn: str = ""
    """The CloudFront KeyValueStore holding each running host's origin; empty in local mode,
    where the local web front keeps the routes."""
    ticket_secret: TicketSecret | None = None
    """Signs socket tickets (lambdas.domain.tickets); the GPU host holds the same secret.
    Unset: `POST /api/sessions/{id}/ticket` answers 503."""
    ticket_secret_arn: str = ""
    """In AWS: the Secrets Manager secret the control Lambda reads `ticket_secret` from at
    cold start, so that the value is never in the template or the environment."""
    ticket_ttl_s: int = Field(default=tickets.DEFAULT_TTL_S, ge=1, le=tickets.MAX_TTL_S)

    auth_mode: Literal["apigw", "jwks"] = "jwks"
    jwks_url: str = Field(default="", pattern=r"^(https?://.+)?$")
    """The issuer's key set, over http(s) (PyJWT fetches nothing else)."""
    jwt_issuer: str = ""
    jwt_audience: str = ""

    idle_after_disconnect_s: int = Field(default=300, ge=1)
    idle_while_connected_s: int = Field(default=900, ge=1)
    boot_grace_s: int = Field(default=1200, ge=1)
    release_grace_s: int = Field(default=60, ge=0)
    max_run_s: int = Field(default=28800, ge=60)
    daily_gpu_hours: float = Field(default=12.0, gt=0, le=24)
    max_sessions_per_user: int = Field(default=2, ge=1, le=100)
    sessions_per_host: int = Field(default=8, ge=1, le=200)
    """Sessions one host takes before the next starts (docs/performance.md: what a host carries)."""
    max_replacements: int = Field(default=2, ge=0, le=10)
    """Hosts replaced in a row because they never became ready, before the fleet gives up and
    says so (never an endless replace loop)."""
    instance_types: InstanceTypes = DEFAULT_INSTANCE_TYPES
    """The group's instance types, in its order of preference (the first is the launch
    template's); shown in messages about capacity."""

    @model_validator(mode="after")
    def _jwks_mode_needs_its_settings(self) -> Settings:
        if self.auth_mode == "jwks":
            missing = [
                f"SPINUP_{name.upper()}"
                for name in ("jwks_url", "jwt_issuer", "jwt_audience")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(
                    f"SPINUP_AUTH_MODE=jwks needs {', '.join(missing)} "
                    "(or set SPINUP_AUTH_MODE=apigw behind API Gateway's JWT authorizer)"
                )
        return self

    @property
    def default_instance_type(self) -> str:
        return self.instance_types[0]

    def ws_url_for(self, host_id: str) -> str:
        """The socket URL of a session placed on `host_id`."""
        return f"{self.ws_base_url}/{host_id}{WS_HOST_SUFFIX}" if self.ws_base_url else ""

    @property
    def daily_budget_s(self) -> float:
        return self.daily_gpu_hours * 3600.0
