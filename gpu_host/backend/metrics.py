"""The backend's Prometheus metrics, in a registry of their own (one per app instance).

With several worker processes (`python -m gpu_host.backend`), the supervisor runs them in
prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, set in the workers'
environment before they import the library): each worker writes its values to files of its
own there, and a scrape — whichever worker answers it — adds up every worker's, those that
died included (counters never go back), except for gauges, which count live workers only
(`livesum`). In that mode a metric must be a Counter, a Histogram or a Gauge with a
`multiprocess_mode`.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where prometheus_client's multiprocess mode keeps the workers' values (read at import)."""
STAGE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
"""Latency buckets: real-time work lives between 1 ms and a few hundred ms."""


class Metrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, *, multiprocess_dir: Path | None = None
    ) -> None:
        """`multiprocess_dir`: where every worker's values are (PROMETHEUS_MULTIPROC_DIR),
        when this process is one of several workers; None: this process's values only."""
        self.registry = registry or CollectorRegistry()
        self._multiprocess_dir = multiprocess_dir
        r = self.registry
        self.active_sessions = Gauge(
            "spinup_active_sessions",
            "Open WebSocket inference sessions",
            registry=r,
            multiprocess_mode="livesum",
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

    def exposition(self) -> bytes:
        """The text a scrape gets: the host's totals, every worker's values added up."""
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        # A fresh registry per scrape, as the library prescribes: the collector reads the
        # files as they are now.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)
