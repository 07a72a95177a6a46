"""A dead worker's Prometheus multiprocess files: folded into the archive, still counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, values
from prometheus_client.parser import text_string_to_metric_families

from gpu_host.backend.metrics import MULTIPROC_ENV, Metrics, forget_worker

PIDS = (101, 102, 103)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def metrics_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    return tmp_path


def worker(metrics_dir: Path, pid: int, monkeypatch: pytest.MonkeyPatch, frames: int) -> None:
    """What worker `pid` leaves in `metrics_dir`: `frames` frames inferred, their stage
    latencies, an error and one open session (a live gauge)."""
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid))
    metrics = Metrics(CollectorRegistry())
    for frame in range(frames):
        metrics.frames_inferred.inc()
        metrics.stage_seconds.labels(stage="total", model="face").observe(0.003 * (frame + 1))
    metrics.errors.labels(code="bad_frame").inc(pid)
    metrics.active_sessions.inc()


def scrape(metrics_dir: Path) -> Samples:
    text = Metrics(CollectorRegistry(), multiprocess_dir=metrics_dir).exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def without_gauges(samples: Samples) -> Samples:
    return {key: v for key, v in samples.items() if key[0] != "spinup_active_sessions"}


@pytest.mark.parametrize("dying", [(101,), (102, 101), (101, 102, 103)])
def test_a_dead_workers_counters_stay_counted_and_its_files_go(
    metrics_dir: Path, monkeypatch: pytest.MonkeyPatch, dying: tuple[int, ...]
) -> None:
    for pid in PIDS:
        worker(metrics_dir, pid, monkeypatch, frames=pid - 100)
    before = scrape(metrics_dir)
    assert before[("spinup_frames_inferred_total", ())] == 1 + 2 + 3

    for pid in dying:
        forget_worker(metrics_dir, pid)

    after = scrape(metrics_dir)
    assert without_gauges(after) == without_gauges(before)
    assert after.get(("spinup_active_sessions", ()), 0) == len(PIDS) - len(dying)
    left = {path.name for path in metrics_dir.iterdir()}
    assert not {name for name in left for pid in dying if name.endswith(f"_{pid}.db")}, left
    assert {"counter_archive.db", "histogram_archive.db"} <= left
    assert not [name for name in left if not name.endswith(".db")], left


def test_forgetting_a_worker_twice_or_one_without_files_changes_nothing(
    metrics_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker(metrics_dir, 101, monkeypatch, frames=2)
    before = scrape(metrics_dir)
    for pid in (101, 101, 999):
        forget_worker(metrics_dir, pid)
    assert without_gauges(scrape(metrics_dir)) == without_gauges(before)
