"""The backend's Prometheus metrics, in a registry of their own (one per app instance).

With several worker processes (`python -m gpu_host.backend`), the supervisor runs them in
prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, set in the workers'
environment before they import the library): each worker writes its values to files of its
own there, and a scrape — whichever worker answers it — adds up every worker's, those that
died included (counters never go back), except for gauges, which count live workers only
(`livesum`). In that mode a metric must be a Counter, a Histogram or a Gauge with a
`multiprocess_mode`.

A dead worker's files: the supervisor calls `forget_worker`, which drops its live gauges
(the library's `mark_process_dead`) and folds its counters and histograms into one archive
file per type (`counter_archive.db`, …), so that they stay counted while the files of
replaced workers do not pile up over a run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where prometheus_client's multiprocess mode keeps the workers' values (read at import)."""
STAGE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
"""Latency buckets: real-time work lives between 1 ms and a few hundred ms."""
ARCHIVE: Final = "archive"
"""The 'pid' part of the files that hold dead workers' values."""
ADDITIVE_TYPES: Final = ("counter", "histogram", "summary")
"""File types whose values a scrape adds up over every file, dead workers' included."""
SCRAPE_ATTEMPTS: Final = 3


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
        self.frames_reused = Counter(
            "spinup_frames_reused",
            "Results that reused the session's last inferred frame's (motion gate)",
            registry=r,
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
        for attempt in range(1, SCRAPE_ATTEMPTS + 1):
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
            try:
                return generate_latest(registry)
            except FileNotFoundError:
                # A dead worker's file was folded into the archive between the collector's
                # listing and its read (`forget_worker`): the next listing is consistent.
                if attempt == SCRAPE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")


def forget_worker(directory: Path, pid: int) -> None:
    """Tidy the multiprocess files of worker `pid`, which is dead: its live gauges go (they
    count live workers only), its counters and histograms move into the archive files, where
    scrapes still add them up. The caller (the supervisor) is the only writer of archives."""
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
    for typ in ADDITIVE_TYPES:
        dead = directory / f"{typ}_{pid}.db"
        if dead.exists():
            _fold_into_archive(directory, typ, dead)


def _fold_into_archive(directory: Path, typ: str, dead: Path) -> None:
    archive = directory / f"{typ}_{ARCHIVE}.db"
    sources = [str(path) for path in (archive, dead) if path.exists()]
    # accumulate=False: histogram buckets stay per bucket, as the files hold them.
    merged = MultiProcessCollector.merge(sources, accumulate=False)  # type: ignore[no-untyped-call]
    # Not `*.db` while being written: a scrape reads only finished files.
    staging = directory / f"{typ}_{ARCHIVE}.staging"
    staging.unlink(missing_ok=True)
    values = MmapedDict(str(staging))  # type: ignore[no-untyped-call]
    try:
        for metric in merged:
            for sample in metric.samples:
                key = mmap_key(
                    metric.name,
                    sample.name,
                    list(sample.labels),
                    list(sample.labels.values()),
                    metric.documentation,
                )
                values.write_value(key, sample.value, sample.timestamp or 0.0)  # type: ignore[no-untyped-call]
    finally:
        values.close()  # type: ignore[no-untyped-call]
    # Replace, then unlink: a scrape between the two counts the dead worker twice for that
    # instant, rather than dropping it (a counter going down reads as a reset).
    os.replace(staging, archive)
    dead.unlink()
    log.info("folded %s into %s", dead.name, archive.name)
