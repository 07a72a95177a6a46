"""What the status says: phase from EC2 and the readiness steps, ETA, stop_at, message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lambdas.domain.model import Snapshot
from lambdas.domain.status import DEFAULT_COLD_START_S, MIN_ETA_S, host_status, phase_of
from lambdas.settings import Settings

NOW = 1_800_000_000.0
RUN = {"desired": "running", "run_seq": 2, "run_open": True, "started_at": NOW - 100}

SnapshotFactory = Callable[..., Snapshot]


@pytest.mark.parametrize(
    ("state", "fields", "phase"),
    [
        ("stopped", {}, "stopped"),
        ("stopped", {"desired": "running"}, "starting"),
        ("stopped", {**RUN}, "starting"),
        ("stopped", {"error": "No capacity"}, "error"),
        ("pending", {**RUN}, "starting"),
        ("running", {**RUN}, "booting"),
        ("running", {**RUN, "backend_up_at": NOW - 10}, "booting"),
        ("running", {**RUN, "ready_at": NOW - 500}, "booting"),
        ("running", {**RUN, "ready_at": NOW - 10}, "ready"),
        ("running", {"stop_pending": True}, "stopping"),
        ("stopping", {}, "stopping"),
        ("stopping", {"desired": "running"}, "stopping"),
        ("shutting-down", {}, "error"),
        ("terminated", {}, "error"),
        (None, {}, "error"),
    ],
)
def test_phase(
    state: Any, fields: dict[str, Any], phase: str, make_snapshot: SnapshotFactory
) -> None:
    assert phase_of(make_snapshot(state, **fields)) == phase


@pytest.mark.parametrize(
    ("state", "fields", "eta"),
    [
        ("stopped", {}, round(DEFAULT_COLD_START_S)),
        ("stopped", {"cold_starts": (100.0, 300.0, 200.0)}, 200),
        ("running", {**RUN, "cold_starts": (100.0, 300.0, 200.0)}, 100),
        ("running", {**RUN, "started_at": NOW - 250, "cold_starts": (200.0,)}, MIN_ETA_S),
        ("running", {**RUN, "ready_at": NOW - 1}, 0),
        (None, {}, None),
    ],
    ids=["default", "median", "median_minus_elapsed", "overdue", "ready", "error"],
)
def test_eta(
    state: Any,
    fields: dict[str, Any],
    eta: int | None,
    settings: Settings,
    make_snapshot: SnapshotFactory,
) -> None:
    assert host_status(make_snapshot(state, **fields), settings, NOW).eta_s == eta


def test_a_ready_instance_publishes_when_it_will_stop(
    settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    snapshot = make_snapshot("running", **RUN, ready_at=NOW - 10)
    status = host_status(snapshot, settings, NOW)
    assert status.stop_at == NOW - 10 + settings.idle_after_disconnect_s
    assert "Stops at" in status.message


def test_a_stopping_instance_publishes_its_stop(
    settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    snapshot = make_snapshot("running", stop_pending=True, stopped_at=NOW - 3)
    assert host_status(snapshot, settings, NOW).stop_at == NOW - 3


@pytest.mark.parametrize("state", ["stopped", "stopping", None])
def test_nothing_to_stop_no_stop_at(
    state: Any, settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    assert host_status(make_snapshot(state), settings, NOW).stop_at is None


@pytest.mark.parametrize(
    ("state", "fields", "words"),
    [
        ("running", {**RUN}, "starting the inference server"),
        ("running", {**RUN, "backend_up_at": NOW - 5}, "loading models"),
        ("running", {**RUN, "models_loaded_at": NOW - 5}, "warming up"),
        ("stopping", {"desired": "running"}, "begins as soon as it has stopped"),
        ("stopped", {"message": "It was idle: no frames for 300 s."}, "Stopped. It was idle"),
        (None, {}, "does not exist"),
        ("terminated", {}, "is terminated"),
        ("terminated", {"error": "No capacity for any type."}, "is terminated"),
        ("running", {**RUN, "message": "g5.xlarge: no capacity"}, "g5.xlarge: no capacity"),
    ],
)
def test_the_message_says_what_is_going_on(
    state: Any,
    fields: dict[str, Any],
    words: str,
    settings: Settings,
    make_snapshot: SnapshotFactory,
) -> None:
    assert words in host_status(make_snapshot(state, **fields), settings, NOW).message


def test_an_error_is_said_once(settings: Settings, make_snapshot: SnapshotFactory) -> None:
    text = "No capacity for any configured instance type."
    snapshot = make_snapshot("stopped", error=text, message=text)
    assert host_status(snapshot, settings, NOW).message == text
