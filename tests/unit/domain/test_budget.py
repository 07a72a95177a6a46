"""The daily GPU-hour budget across the fleet: what counts today, what is left, when the open
runs use it up, and the refusal text."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.domain import budget
from lambdas.domain.host_record import FleetRecord
from lambdas.settings import Settings
from tests.unit.domain.conftest import NOW, TODAY, A, B

MIDNIGHT = NOW - 8 * 3600
HOUR = 3600.0


def fleet(**fields: Any) -> FleetRecord:
    return FleetRecord(**fields)


@pytest.mark.parametrize(
    ("fields", "used_s"),
    [
        ({}, 0.0),
        ({"budget_day": TODAY, "budget_used_s": 5000.0}, 5000.0),
        ({"budget_day": "2027-01-14", "budget_used_s": 5000.0}, 0.0),
        ({"runs": {A: NOW - 600}}, 600.0),
        ({"runs": {A: NOW - HOUR, B: NOW - HOUR}}, 2 * HOUR),
        ({"runs": {A: MIDNIGHT - HOUR}}, 8 * HOUR),
        ({"budget_day": TODAY, "budget_used_s": 100.0, "runs": {A: NOW - 50, B: NOW - 10}}, 160.0),
    ],
    ids=[
        "nothing",
        "closed_runs_today",
        "closed_runs_yesterday_do_not_count",
        "an_open_run",
        "two_hosts_use_two_gpu_hours_per_hour",
        "a_run_from_yesterday_counts_from_midnight",
        "closed_and_open_runs",
    ],
)
def test_used_today(fields: dict[str, Any], used_s: float) -> None:
    assert budget.used_today_s(fleet(**fields), NOW) == pytest.approx(used_s)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"runs": {A: NOW}}, NOW + 12 * HOUR),
        ({"runs": {A: NOW, B: NOW}}, NOW + 6 * HOUR),
        ({"runs": {A: NOW, B: NOW}, "budget_day": TODAY, "budget_used_s": 10 * HOUR}, NOW + HOUR),
        ({"runs": {A: NOW}, "budget_day": TODAY, "budget_used_s": 12 * HOUR}, NOW),
        ({"runs": {A: NOW}, "budget_day": TODAY, "budget_used_s": 13 * HOUR}, NOW),
        ({}, None),
    ],
    ids=[
        "one_host_has_it_all",
        "two_hosts_share_the_rest",
        "two_hosts_share_what_is_left",
        "used_up_now",
        "overdrawn_is_now",
        "nothing_running",
    ],
)
def test_exhausted_at(fields: dict[str, Any], expected: float | None, settings: Settings) -> None:
    assert budget.exhausted_at(fleet(**fields), settings, NOW) == expected


def test_budget_left_at_midnight_is_not_a_stop(settings: Settings) -> None:
    late = MIDNIGHT + 24 * HOUR - HOUR
    assert budget.exhausted_at(fleet(runs={A: late}), settings, late) is None


def test_opening_a_run_counts_it_from_now() -> None:
    assert budget.open_run(A, NOW) == {("runs", A): NOW}


@pytest.mark.parametrize(
    ("fields", "used_s"),
    [
        (
            {"runs": {A: NOW - 900, B: NOW - 100}, "budget_day": TODAY, "budget_used_s": 100.0},
            1000.0,
        ),
        ({"runs": {A: NOW - 900}, "budget_day": "2027-01-14", "budget_used_s": 100.0}, 900.0),
        ({"runs": {A: MIDNIGHT - 600}}, 8 * HOUR),
        ({"runs": {B: NOW - 900}}, 0.0),
    ],
    ids=["adds_to_today", "a_new_day_starts_from_zero", "only_today_counts", "no_run_of_its_own"],
)
def test_closing_a_run_adds_it_to_today(fields: dict[str, Any], used_s: float) -> None:
    assert budget.close_run(fleet(**fields), A, NOW) == {
        ("budget_day",): TODAY,
        ("budget_used_s",): used_s,
        ("runs", A): None,
    }


def test_a_start_within_budget_is_not_refused(settings: Settings) -> None:
    record = fleet(budget_day=TODAY, budget_used_s=settings.daily_budget_s - 61, runs={A: NOW - 60})
    assert budget.refusal(record, settings, NOW) is None


def test_over_budget_the_refusal_says_why_and_until_when(settings: Settings) -> None:
    record = fleet(budget_day=TODAY, budget_used_s=10 * HOUR, runs={A: NOW - HOUR, B: NOW - HOUR})
    text = budget.refusal(record, settings, NOW)
    assert text is not None
    assert "12 h" in text
    assert "12.0 h today across the fleet" in text
    assert "00:00 UTC, in 16 h 0 min" in text
    assert "SPINUP_DAILY_GPU_HOURS" in text


@pytest.mark.parametrize(
    ("now", "day"),
    [(NOW, TODAY), (MIDNIGHT - 1, "2027-01-14"), (MIDNIGHT, TODAY)],
)
def test_utc_day(now: float, day: str) -> None:
    assert budget.utc_day(now) == day
    assert budget.day_start(now) <= now < budget.day_start(now) + budget.DAY_S
