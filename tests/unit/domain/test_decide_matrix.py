"""`decide` for every EC2 state × host situation: which actions, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lambdas.domain.actions import Action, Ec2Call, RetryStop, Transition
from lambdas.domain.decide import START_IN_FLIGHT_S, decide
from lambdas.domain.host_record import HostRecord, SessionLease
from lambdas.domain.model import InstanceView, Snapshot
from lambdas.settings import Settings

NOW = 1_800_000_000.0  # the `now` fixture's value
SnapshotFactory = Callable[..., Snapshot]
HostFactory = Callable[..., HostRecord]

LEASE = {"alice": {"a" * 32: SessionLease(created_at=NOW - 60, expires_at=NOW + 3600)}}

SITUATIONS: dict[str, dict[str, Any]] = {
    "nothing_wanted": {},
    "start_requested": {"desired": "running", "sessions": LEASE, "last_start_request_at": NOW},
    "start_in_flight": {
        "desired": "running",
        "sessions": LEASE,
        "run_seq": 3,
        "cold_start_seq": 3,
        "run_open": True,
        "started_at": NOW - 10,
    },
    "booting": {
        "desired": "running",
        "sessions": LEASE,
        "run_seq": 3,
        "cold_start_seq": 3,
        "run_open": True,
        "started_at": NOW - 600,
    },
    "ready_in_use": {
        "desired": "running",
        "sessions": LEASE,
        "run_seq": 3,
        "cold_start_seq": 3,
        "run_open": True,
        "started_at": NOW - 3600,
        "ready_at": NOW - 3400,
        "last_inference_at": NOW - 20,
        "connected_sessions": 1,
    },
    "ready_idle": {
        "desired": "running",
        "sessions": LEASE,
        "run_seq": 3,
        "cold_start_seq": 3,
        "run_open": True,
        "started_at": NOW - 3600,
        "ready_at": NOW - 3400,
        "last_inference_at": NOW - 2000,
    },
    "stop_written": {"stop_pending": True, "stopped_at": NOW - 5, "run_seq": 3},
    "stop_written_start_queued": {
        "stop_pending": True,
        "stopped_at": NOW - 5,
        "run_seq": 3,
        "desired": "running",
        "sessions": LEASE,
    },
}

GONE = "instance_gone"
ADOPT = "adopt_run"
EXPECTED: dict[tuple[str | None, str], list[str]] = {
    # stopped: start what is wanted, tidy up what ended
    ("stopped", "nothing_wanted"): [],
    ("stopped", "start_requested"): ["claim_start"],
    ("stopped", "start_in_flight"): [],
    ("stopped", "booting"): ["run_ended_outside"],
    ("stopped", "ready_in_use"): ["run_ended_outside"],
    ("stopped", "ready_idle"): ["run_ended_outside"],
    ("stopped", "stop_written"): ["stop_finished"],
    ("stopped", "stop_written_start_queued"): ["claim_start"],
    # pending: ours is starting; anything else was started outside Spinup
    ("pending", "nothing_wanted"): [ADOPT],
    ("pending", "start_requested"): [ADOPT],
    ("pending", "start_in_flight"): [],
    ("pending", "booting"): [],
    ("pending", "ready_in_use"): [],
    ("pending", "ready_idle"): [],
    ("pending", "stop_written"): [],
    ("pending", "stop_written_start_queued"): [],
    # running: the idle rules; a written stop is finished before a queued start
    ("running", "nothing_wanted"): [ADOPT],
    ("running", "start_requested"): [ADOPT],
    ("running", "start_in_flight"): [],
    ("running", "booting"): [],
    ("running", "ready_in_use"): [],
    ("running", "ready_idle"): ["stop"],
    ("running", "stop_written"): ["retry_stop"],
    ("running", "stop_written_start_queued"): ["retry_stop"],
    # stopping: wait for `stopped` (its event reconciles again)
    **{("stopping", situation): [] for situation in SITUATIONS},
    # gone: nothing can start; leave nothing wanting it
    **{
        (state, situation): [] if situation in ("nothing_wanted", "stop_written") else [GONE]
        for state in ("shutting-down", "terminated", None)
        for situation in SITUATIONS
    },
}


def names(actions: list[Action]) -> list[str]:
    return [action.name for action in actions]


def test_the_table_covers_every_state_and_situation() -> None:
    states = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated", None)
    assert set(EXPECTED) == {(s, situation) for s in states for situation in SITUATIONS}


@pytest.mark.parametrize(("state", "situation"), sorted(EXPECTED, key=str))
def test_decide(
    state: Any, situation: str, settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    snapshot = make_snapshot(state, **SITUATIONS[situation])
    assert names(decide(snapshot, settings, NOW)) == EXPECTED[(state, situation)]


def test_a_claim_is_a_compare_and_set_on_the_run(
    settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    """Given many processes reading the same stopped instance, when each claims the start,
    then only the one whose `run_seq` still matches may call StartInstances."""
    snapshot = make_snapshot("stopped", **SITUATIONS["start_requested"], run_seq=7)
    (claim,) = decide(snapshot, settings, NOW)
    assert isinstance(claim, Transition)
    assert claim.expect == {"run_seq": 7, "run_open": False, "desired": "running"}
    assert claim.changes["run_seq"] == 8
    assert claim.changes["run_open"] is True
    assert claim.changes["started_at"] == NOW
    assert claim.changes["connected_sessions"] == 0
    assert claim.then is Ec2Call.START


def test_a_stop_is_locked_on_the_generation_it_read(
    settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    snapshot = make_snapshot("running", **SITUATIONS["ready_idle"], generation=41)
    (stop,) = decide(snapshot, settings, NOW)
    assert isinstance(stop, Transition)
    assert stop.expect == {"generation": 41, "run_seq": 3, "run_open": True}
    assert stop.changes["desired"] == "stopped"
    assert stop.changes["sessions"] == {}
    assert stop.changes["stop_pending"] is True
    assert stop.changes["stop_reason"] == "idle_disconnected"
    assert stop.then is Ec2Call.STOP


def test_a_written_stop_is_retried_until_ec2_stops(
    settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    snapshot = make_snapshot("running", **SITUATIONS["stop_written"])
    assert decide(snapshot, settings, NOW) == [RetryStop()]


@pytest.mark.parametrize(
    ("age_s", "expected"),
    [(0, []), (START_IN_FLIGHT_S - 1, []), (START_IN_FLIGHT_S, ["run_ended_outside"])],
)
def test_a_claimed_start_is_in_flight_for_a_while(
    age_s: float, expected: list[str], settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    fields = {**SITUATIONS["start_in_flight"], "started_at": NOW - age_s}
    assert names(decide(make_snapshot("stopped", **fields), settings, NOW)) == expected


def test_a_run_that_ended_outside_spinup_is_not_restarted(
    settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    (ended,) = decide(make_snapshot("stopped", **SITUATIONS["ready_idle"]), settings, NOW)
    assert isinstance(ended, Transition)
    assert ended.changes["desired"] == "stopped"
    assert ended.changes["sessions"] == {}
    assert "outside Spinup" in str(ended.changes["message"])


def test_a_start_over_budget_is_cancelled_with_the_reason(
    settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    fields = {
        **SITUATIONS["start_requested"],
        "budget_day": "2027-01-15",
        "budget_used_s": settings.daily_budget_s,
    }
    (cancel,) = decide(make_snapshot("stopped", **fields), settings, NOW)
    assert isinstance(cancel, Transition)
    assert cancel.name == "cancel_start"
    assert cancel.changes["desired"] == "stopped"
    assert "budget" in str(cancel.changes["message"])


@pytest.mark.parametrize(
    ("launched_at", "started"),
    [(NOW - 30, NOW - 30), (None, NOW), (NOW - 7200, NOW)],
    ids=["launch_time_known", "launch_time_unknown", "launch_time_before_our_last_stop"],
)
def test_an_instance_started_outside_spinup_is_adopted_from_its_launch(
    launched_at: float | None, started: float, settings: Settings, make_host: HostFactory
) -> None:
    instance = InstanceView("i-0123456789abcdef0", "running", "g5.xlarge", launched_at)
    snapshot = Snapshot(host=make_host(stopped_at=NOW - 3600), instance=instance)
    (adopt,) = decide(snapshot, settings, NOW)
    assert isinstance(adopt, Transition)
    assert adopt.changes["started_at"] == started
    assert adopt.changes["run_adopted"] is True


def test_a_cold_start_is_recorded_once_per_run(
    settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    fields = {
        **SITUATIONS["ready_in_use"],
        "cold_start_seq": 2,
        "cold_starts": tuple(float(n) for n in range(100, 110)),
    }
    (record,) = decide(make_snapshot("running", **fields), settings, NOW)
    assert isinstance(record, Transition)
    assert record.name == "record_cold_start"
    assert record.expect == {"cold_start_seq": 2}
    assert record.changes["cold_start_seq"] == 3
    assert record.changes["cold_starts"] == (*(float(n) for n in range(101, 110)), 200.0)


def test_an_adopted_run_records_no_cold_start(
    settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    fields = {**SITUATIONS["ready_in_use"], "cold_start_seq": 2, "run_adopted": True}
    assert decide(make_snapshot("running", **fields), settings, NOW) == []


def test_a_missing_instance_closes_the_run_with_an_operator_message(
    settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    (gone,) = decide(make_snapshot(None, **SITUATIONS["ready_in_use"]), settings, NOW)
    assert isinstance(gone, Transition)
    assert gone.changes["desired"] == "stopped"
    assert gone.changes["run_open"] is False
    assert "SPINUP_INSTANCE_ID" in str(gone.changes["message"])
    assert gone.changes["budget_used_s"] == 3600.0
