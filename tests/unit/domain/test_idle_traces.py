"""The idle-trace replay (bench/idle_traces.py): no false stops over hundreds of seeded traces.

The bench replays 1000 (`python -m bench.idle_traces`); the test replays the first 500 of the
same seeded set, which cover every scenario, in a few seconds.
"""

from __future__ import annotations

from bench.idle_traces import SEED, generate_traces, replay

TRACES = 500


def test_traces_are_deterministic() -> None:
    assert generate_traces(20, SEED) == generate_traces(20, SEED)
    assert generate_traces(20, SEED) != generate_traces(20, SEED + 1)


def test_no_false_stops_over_hundreds_of_traces() -> None:
    """Given 500 seeded traces (long sessions, hidden tabs, returns and keepalive clicks just
    before the stop, reloads, slow boots, several users), when they are replayed through the
    pure `decide`, then nothing stops while in use, nothing is left running, and the lock
    had races to win."""
    report = replay(generate_traces(TRACES, SEED))
    assert report.false_stops == []
    assert report.left_running == 0
    assert report.runs > TRACES
    assert report.stops_lost_to_activity > 0
    assert report.stops.keys() >= {"idle_connected", "idle_disconnected", "released"}
    released = report.waste_by_reason["released"]
    assert released.max_s < 60 + 30 + 60 + 1  # grace + report lag + one schedule period
