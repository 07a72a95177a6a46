"""The idle-trace replay over the fleet (bench/idle_traces.py): no false stops and no host left
running over a seeded set of traces of several users on several hosts.

The bench replays 1000 (`python -m bench.idle_traces`); the test replays the first 150 of the
same seeded set, which cover every scenario (a full fleet, slow and failed boots, hard limits,
races of activity with leaves), in a few seconds.
"""

from __future__ import annotations

import pytest

from bench.idle_traces import (
    MAX_HOSTS,
    SEED,
    Report,
    bench_settings,
    generate_traces,
    idle_bound_s,
    replay,
)
from lambdas.domain.stop_rules import REPORT_LAG_S

TRACES = 150


@pytest.fixture(scope="module")
def report() -> Report:
    return replay(generate_traces(TRACES, SEED))


def test_traces_are_deterministic() -> None:
    assert generate_traces(20, SEED) == generate_traces(20, SEED)
    assert generate_traces(20, SEED) != generate_traces(20, SEED + 1)


def test_no_false_stops_and_no_host_left_running(report: Report) -> None:
    """Given 150 seeded traces (overlapping users on up to three hosts, long sessions, hidden
    tabs, returns and keepalive clicks just before the stop, reloads, slow and failed boots),
    when they are replayed through the pure `decide` with the group simulated, then no host
    leaves while in use, none is taken out without a leave decided for it, and none is left
    running."""
    assert report.false_stops == []
    assert report.left_running == 0


def test_the_traces_exercise_the_fleet(report: Report) -> None:
    """The replay is only as good as what it went through: several hosts at once, a full
    fleet, replacements, the lock's races and every idle reason."""
    assert report.peak_hosts == MAX_HOSTS
    assert report.host_runs > TRACES
    assert report.pages_gave_up_waiting > 0
    assert report.stops_lost_to_activity > 0
    assert report.stops.keys() >= {
        "idle_connected",
        "idle_disconnected",
        "released",
        "boot_timeout",
    }


def test_idle_waste_stays_within_the_rules(report: Report) -> None:
    settings = bench_settings()
    released = report.waste_by_reason["released"]
    schedule = 60 + 1  # one schedule period and the reconcile's delay
    assert released.max_s < settings.release_grace_s + REPORT_LAG_S + schedule
    assert report.waste.max_s <= idle_bound_s(settings)


def test_skipping_quiet_reconciles_changes_nothing() -> None:
    """The replay skips a reconcile when nothing changed and no rule's deadline passed since
    the last one decided nothing; deciding every time gives the same report (else `decide`
    grew a rule of the clock that the skip does not know of: see `World.quiet_until`)."""
    traces = generate_traces(30, SEED + 1)
    assert replay(traces, skip_quiet=False) == replay(traces)


def test_the_report_does_not_depend_on_the_workers() -> None:
    traces = generate_traces(6, SEED)
    assert replay(traces, workers=2) == replay(traces)
