"""The daily GPU-hour budget: what counts today, what is left, and the refusal text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lambdas.domain import budget
from lambdas.domain.host_record import HostRecord
from lambdas.settings import Settings

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
TODAY = "2027-01-15"
MIDNIGHT = NOW - 8 * 3600

HostFactory = Callable[..., HostRecord]


@pytest.mark.parametrize(
    ("fields", "used_s"),
    [
        ({}, 0.0),
        ({"budget_day": TODAY, "budget_used_s": 5000.0}, 5000.0),
        ({"budget_day": "2027-01-14", "budget_used_s": 5000.0}, 0.0),
        ({"run_open": True, "started_at": NOW - 600}, 600.0),
        ({"run_open": True, "started_at": MIDNIGHT - 3600}, 8 * 3600.0),
        ({"run_open": False, "started_at": NOW - 600}, 0.0),
        (
            {"budget_day": TODAY, "budget_used_s": 100.0, "run_open": True, "started_at": NOW - 50},
            150.0,
        ),
    ],
    ids=[
        "nothing",
        "closed_runs_today",
        "closed_runs_yesterday_do_not_count",
        "the_open_run",
        "a_run_from_yesterday_counts_from_midnight",
        "a_closed_run_is_in_the_counter_only",
        "both",
    ],
)
def test_used_today(fields: dict[str, Any], used_s: float, make_host: HostFactory) -> None:
    assert budget.used_today_s(make_host(**fields), NOW) == pytest.approx(used_s)


def test_closing_a_run_adds_it_to_today(make_host: HostFactory) -> None:
    host = make_host(budget_day=TODAY, budget_used_s=100.0, run_open=True, started_at=NOW - 900)
    assert budget.close_run(host, NOW) == {"budget_day": TODAY, "budget_used_s": 1000.0}


def test_a_start_within_budget_is_not_refused(settings: Settings, make_host: HostFactory) -> None:
    host = make_host(budget_day=TODAY, budget_used_s=settings.daily_budget_s - 1)
    assert budget.refusal(host, settings, NOW) is None


def test_over_budget_the_refusal_says_why_and_until_when(
    settings: Settings, make_host: HostFactory
) -> None:
    host = make_host(budget_day=TODAY, budget_used_s=settings.daily_budget_s)
    text = budget.refusal(host, settings, NOW)
    assert text is not None
    assert "12 h" in text
    assert "00:00 UTC" in text
    assert "in 16 h 0 min" in text
    assert "SPINUP_DAILY_GPU_HOURS" in text


@pytest.mark.parametrize(
    ("used_s", "expected"),
    [(0.0, NOW + 12 * 3600), (11 * 3600.0, NOW + 3600), (12 * 3600.0, NOW)],
)
def test_the_open_run_runs_out_of_budget_at(
    used_s: float, expected: float, settings: Settings, make_host: HostFactory
) -> None:
    host = make_host(budget_day=TODAY, budget_used_s=used_s, run_open=True, started_at=NOW)
    assert budget.exhausted_at(host, settings, NOW) == expected


def test_budget_left_at_midnight_is_not_a_stop(settings: Settings, make_host: HostFactory) -> None:
    late = MIDNIGHT + 86400 - 3600
    host = make_host(run_open=True, started_at=late)
    assert budget.exhausted_at(host, settings, late) is None
