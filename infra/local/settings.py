"""The local mode's own settings: ports, paths and loop periods, read once from the environment.

The control plane's settings (`SPINUP_IDLE_*`, `SPINUP_RELEASE_GRACE_S`, …) are the same
`lambdas.settings.Settings` the Lambda reads; this model only adds what exists locally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpu_host.backend.settings import MAX_WORKERS
from gpu_host.models.spec import USER_MODELS_FILE, model_catalog
from infra.local.ports import HostPorts
from lambdas.settings_types import CommaList

REPO_ROOT = Path(__file__).resolve().parents[2]


def _every_model(fields: dict[str, Any]) -> tuple[str, ...]:
    """The catalog's names, for the `user_models` already validated (declared before
    `served_models`, so pydantic has it; absent when it failed: the built-in models)."""
    user_models: Path | None = fields.get("user_models")  # None: the built-in models
    return tuple(model_catalog(user_models))


class LocalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPINUP_LOCAL_", frozen=True)

    bind: str = "127.0.0.1"
    ui_port: int = Field(default=8000, ge=1, le=65535)
    backend_port: int = Field(default=8080, ge=1, le=65535)
    """The first host's backend (and Triton's ports below); further hosts take free ports."""
    triton_http_port: int = Field(default=8100, ge=1, le=65535)
    triton_grpc_port: int = Field(default=8101, ge=1, le=65535)
    triton_metrics_port: int = Field(default=8102, ge=1, le=65535)
    moto_port: int = Field(default=5000, ge=0, le=65535)

    run_dir: Path = REPO_ROOT / ".run" / "local"
    triton_venv: Path = REPO_ROOT / ".venv-triton"
    frontend_dir: Path = REPO_ROOT / "frontend"

    region: str = "us-east-1"
    table_name: str = "spinup-local"
    image_id: str = "ami-0123456789abcdef0"

    user_models: Path = Field(default=USER_MODELS_FILE, validate_default=True)
    """Your own models' declarations (docs/models.md), for Triton and the backend alike; a
    missing file declares none."""
    served_models: CommaList = Field(default_factory=_every_model)
    """What each emulated host's Triton loads and the backend serves (comma-separated);
    by default every model of the catalog: the built-in ones and those `user_models` declares."""

    backend_workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    """The backend's worker processes (`SPINUP_WORKERS`): one by default here, where Triton
    shares the few cores with everything else; a deployment runs one per core."""

    require_tickets: bool = False
    """Make the local backend refuse sign-in token hellos, as a deployment does (the engine
    uses socket tickets either way)."""

    max_hosts: int = Field(default=1, ge=1, le=16)
    """The fleet's maximum size (the group's MaxSize): one host stack (Triton + backend) runs
    per host in service, so two already make a 2-core machine slow."""
    warm_hosts: int = Field(default=1, ge=0, le=16)
    """The warm pool's size: stopped, initialized hosts ready to start."""
    host_ready_timeout_s: float = Field(default=300.0, gt=0)
    """How long a starting host may take to answer ready before it gives up (ABANDON)."""

    reconcile_interval_s: float = Field(default=3.0, gt=0)
    """The local stand-in for EventBridge's one-minute schedule: faster, so a demo is lively."""
    agent_poll_s: float = Field(default=1.0, gt=0)

    sign_in: Literal["dev", "code"] = "dev"
    """`dev`: config.json carries a development token, so the demo is one click (Start).
    `code`: the page signs in through the local OIDC provider (`/local-oidc/`) with the
    authorization code flow + PKCE and refreshes with rotation, as it does with Cognito."""
    token_ttl_s: int = Field(default=3600, ge=1)
    """Lifetime of the provider's ID and access tokens (tests make it seconds)."""
    refresh_ttl_s: int = Field(default=12 * 3600, ge=60)
    """Lifetime of a sign-in's refresh tokens (Cognito's app client: 12 h)."""

    @field_validator("user_models")
    @classmethod
    def _readable_declarations(cls, value: Path) -> Path:
        model_catalog(value)  # a broken file is a settings error that names it
        return value

    @field_validator("served_models")
    @classmethod
    def _known_models(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        known = _every_model(info.data)
        unknown = sorted(set(value) - set(known))
        if unknown or not value:
            raise ValueError(f"serve at least one of {sorted(known)}; unknown: {unknown}")
        return value

    @property
    def ui_origin(self) -> str:
        return f"http://{self.bind}:{self.ui_port}"

    @property
    def ws_base_url(self) -> str:
        """Sockets go through the local web front, routed per host as CloudFront routes them."""
        return f"ws://{self.bind}:{self.ui_port}/ws"

    @property
    def first_host_ports(self) -> HostPorts:
        return HostPorts(
            backend=self.backend_port,
            triton_http=self.triton_http_port,
            triton_grpc=self.triton_grpc_port,
            triton_metrics=self.triton_metrics_port,
        )
