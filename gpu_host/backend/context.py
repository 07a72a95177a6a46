"""What one backend process shares between its routes: built in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpu_host.backend.auth import HelloAuthenticator
from gpu_host.backend.metrics import Metrics
from gpu_host.backend.model_loader import ModelLoader
from gpu_host.backend.pipeline import FramePipeline
from gpu_host.backend.reporter import Reporter
from gpu_host.backend.sessions import SessionRegistry
from gpu_host.backend.settings import Settings
from gpu_host.backend.triton_gateway import TritonGateway


@dataclass(slots=True)
class Readiness:
    models_loaded: bool = False
    warmed_up: bool = False


@dataclass(slots=True)
class Backend:
    settings: Settings
    metrics: Metrics
    authenticator: HelloAuthenticator
    sessions: SessionRegistry
    reporter: Reporter
    gateway: TritonGateway
    pipeline: FramePipeline
    loader: ModelLoader
    readiness: Readiness = field(default_factory=Readiness)
