"""The backend's Prometheus metrics, in a registry of their own (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STAGE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
"""Latency buckets: real-time work lives between 1 ms and a few hundred ms."""


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.active_sessions = Gauge(
            "spinup_active_sessions", "Open WebSocket inference sessions", registry=r
        )
        self.frames_received = Counter(
            "spinup_frames_received", "Binary frames received", registry=r
        )
        self.frames_dropped = Counter(
            "spinup_frames_dropped",
            "Frames replaced in a session's slot before inference",
            registry=r,
        )
        self.frames_inferred = Counter(
            "spinup_frames_inferred", "Frames that produced a result", registry=r
        )
        self.stage_seconds = Histogram(
            "spinup_stage_seconds",
            "Latency per stage (queue, decode, preprocess, infer, postprocess, total)",
            ["stage", "model"],
            buckets=STAGE_BUCKETS_S,
            registry=r,
        )
        self.models_late = Counter(
            "spinup_models_late",
            "Model results cut off by the frame budget, by model",
            ["model"],
            registry=r,
        )
        self.errors = Counter(
            "spinup_errors",
            "Errors sent to clients and sessions refused, by code",
            ["code"],
            registry=r,
        )
