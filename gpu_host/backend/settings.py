"""The backend's settings: environment variables with the prefix `SPINUP_`, read once."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpu_host.backend.motion import DEFAULT_THRESHOLD
from gpu_host.backend.protocol import choose_models
from gpu_host.backend.triton_http import triton_address
from gpu_host.models.spec import BUILTIN_SPECS, USER_MODELS_FILE, ModelSpec, model_catalog
from lambdas.settings import Settings as ControlSettings
from lambdas.settings_types import CommaList, TicketSecret

_CONTROL_SESSION_LIMIT: int = ControlSettings.model_fields["max_sessions_per_user"].default
MAX_WORKERS = 256
DEFAULT_MODELS: Final = ("detect", "pose")
SPARE_MODEL_SLOTS: Final = 2
"""The default model budget: the start-up models and this many more."""


def host_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a cgroup's cpuset narrows),
    capped at MAX_WORKERS."""
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPINUP_", frozen=True, extra="ignore")

    triton_url: str = "http://127.0.0.1:8000"
    """Triton's HTTP address; the backend calls its HTTP API with binary tensors
    (`triton_http`)."""
    triton_shared_memory: bool = True
    """Send model inputs to Triton through system shared memory (`triton_shm`), not in the
    request body, when Triton can map it (it shares this host's /dev/shm); otherwise, or when
    False, requests carry their tensors."""
    jwks_url: str
    """Where the token signing keys are: `http(s)://…/.well-known/jwks.json`."""
    jwt_issuer: str
    jwt_audience: str = "spinup"
    ticket_secret: TicketSecret | None = None
    """Verifies socket tickets (lambdas.domain.tickets); the control API signs with the same."""
    require_tickets: bool = False
    """True: a hello must carry a ticket; a sign-in token (`"token"`, protocol v1 as first
    written) is refused with 4401. The CDK app turns it on; the local mode leaves it off."""
    allowed_origins: CommaList = ()
    """Browser origins allowed to open the socket; empty allows any."""
    max_frame_bytes: int = Field(default=2 * 1024 * 1024, gt=16)
    max_frame_pixels: int = Field(default=2560 * 1440, gt=0)
    max_sessions_per_user: int = Field(default=_CONTROL_SESSION_LIMIT, ge=1)
    """Sockets per user at once: one per API session, so the control plane's limit (the CDK app
    publishes the deployed value to the host)."""
    models: CommaList = tuple(BUILTIN_SPECS)
    """The models this host serves (Triton's repository holds them all); a session picks a
    subset. Triton loads the start-up models at start and the others when a session asks
    (`startup_models`, docs/models.md "Models loaded on demand")."""
    default_models: CommaList = DEFAULT_MODELS
    """What a session gets when its hello names no models: those of these that are served
    (every served model when none of them is). These (and the models whose regions they
    read) are the start-up models: loaded at start, warm before `ready`, never unloaded."""
    max_loaded_models: int | None = Field(default=None, ge=1)
    """The model budget: how many models Triton may hold at once. Loading one more unloads
    the least recently used idle one, or is refused when none is idle. None: the start-up
    models and SPARE_MODEL_SLOTS more, or every served model when that is more (one session
    may use every built-in model at once). At least the number of start-up models."""
    model_load_timeout_s: float = Field(default=120.0, gt=0)
    """How long a session waits for a model to load (its own load, or another's)."""
    user_models: Path | None = USER_MODELS_FILE
    """Your own models' declarations (`user_models.json`, see docs/models.md); a missing file
    declares none, and None means the built-in models only."""
    frame_budget_ms: float = Field(default=500.0, gt=0)
    """How long a frame waits for its models, from the moment they start. A model still
    running then is cancelled and named in the result's `late`; the others' results go out."""
    motion_gate: bool = False
    """True: a frame that barely differs from the session's last inferred frame gets that
    frame's results again (`reused: true`) instead of an inference (`motion.py`; the figures
    are in docs/performance.md, "Motion gating")."""
    motion_threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0, le=255)
    """The gate's threshold: mean absolute difference of the 40×30 grayscale frames, in gray
    levels, below which a frame counts as unchanged (0: never)."""

    table_name: str = ""
    """The control plane's table; empty disables reporting (tests, bare runs)."""
    host_id: str = "gpu-0"
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None

    hello_timeout_s: float = Field(default=10.0, gt=0)
    """How long a new socket may stay silent before its hello."""
    infer_timeout_s: float = Field(default=5.0, gt=0)
    """Deadline of one Triton request; past it the request counts as a transport failure."""
    breaker_failures: int = Field(default=3, ge=1)
    """Consecutive transport failures that open the circuit breaker."""
    breaker_cooldown_s: float = Field(default=5.0, gt=0)
    """How long the open breaker fails fast before it lets one probe through."""
    heartbeat_s: float = Field(default=30.0, gt=0)
    """Minimum spacing of activity heartbeats to the host record (host-wide, all workers)."""

    workers: int = Field(default_factory=host_cores, ge=1, le=MAX_WORKERS)
    """Worker processes serving the one port (`python -m gpu_host.backend`); default: the
    host's cores. One process uses at most one core, and Triton's batcher merges the
    workers' requests. The local mode passes 1 (`SPINUP_LOCAL_BACKEND_WORKERS`)."""
    state_dir: Path | None = None
    """Where the workers' shared host-local store lives (SQLite, `host.sqlite3`, and the
    Prometheus multiprocess files under `metrics/`). The supervisor starts it afresh. None:
    a private temporary directory, removed at exit (the local mode); systemd gives
    `/run/spinup-backend`."""

    @field_validator("allowed_origins")
    @classmethod
    def _origins_without_slash(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Browsers send `Origin: https://host` (no path, no trailing slash); normalize so a
        # configured `https://host/` still matches.
        return tuple(origin.rstrip("/") for origin in value)

    @field_validator("triton_url")
    @classmethod
    def _triton_address(cls, value: str) -> str:
        triton_address(value)  # the client's own rule: refused here, at start-up
        return value

    @field_validator("jwks_url")
    @classmethod
    def _http_jwks(cls, value: str) -> str:
        # PyJWT fetches key sets over HTTP(S) only (it refuses file:// on purpose).
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
            raise ValueError(f"jwks_url must be an http(s) URL, got {value!r}")
        return value

    @field_validator("models", "default_models")
    @classmethod
    def _deduplicated(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _tickets_need_their_secret(self) -> Settings:
        if self.require_tickets and self.ticket_secret is None:
            raise ValueError("SPINUP_REQUIRE_TICKETS needs SPINUP_TICKET_SECRET")
        return self

    @model_validator(mode="after")
    def _servable_models(self) -> Settings:
        if not self.models:
            raise ValueError("models: at least one model must be served")
        catalog = self.catalog()
        for field, names in (("models", self.models), ("default_models", self.default_models)):
            unknown = [name for name in names if name not in catalog]
            if unknown:
                raise ValueError(f"{field}: unknown models {unknown}; known: {sorted(catalog)}")
        for name in self.models:
            source = catalog[name].regions_from
            if source is not None and source not in self.models:
                raise ValueError(f"models: {name!r} reads the regions of {source!r}; serve it too")
        return self

    @model_validator(mode="after")
    def _budget_holds_the_startup_models(self) -> Settings:
        if self.max_loaded_models is not None:
            startup = self.startup_models()
            if self.max_loaded_models < len(startup):
                raise ValueError(
                    f"max_loaded_models {self.max_loaded_models} < the {len(startup)} "
                    f"start-up models {list(startup)}"
                )
        return self

    def startup_models(self) -> tuple[str, ...]:
        """The models loaded at start (`startup_models`)."""
        return startup_models(self.models, self.default_models, self.catalog())

    def model_budget(self) -> int:
        """`max_loaded_models`, or its default."""
        if self.max_loaded_models is not None:
            return self.max_loaded_models
        return max(len(self.startup_models()) + SPARE_MODEL_SLOTS, len(self.models))

    def catalog(self) -> dict[str, ModelSpec]:
        """Every model this host could serve: the built-in ones and the user's."""
        return model_catalog(self.user_models)


def startup_models(
    served: Sequence[str], defaults: Sequence[str], catalog: Mapping[str, ModelSpec]
) -> tuple[str, ...]:
    """What Triton loads at start and the backend warms before `ready`: the models a hello
    without models gets (`protocol.choose_models`), each after the model whose regions it
    reads. The local supervisor passes them to Triton as `--load-model` flags."""
    needed: dict[str, None] = {}
    for name in choose_models(None, served, defaults):
        source = catalog[name].regions_from
        if source is not None:
            needed[source] = None
        needed[name] = None
    return tuple(needed)
