"""The daily GPU-hour budget, across the fleet: how much of today (UTC) the hosts have run, and
what is left.

Closed runs are summed in the fleet record (`budget_day`, `budget_used_s`); each open run
(`FleetRecord.runs`: host → start) is counted from its start (or from midnight, for a run that
began yesterday) up to now. Two hosts running for an hour use two GPU-hours.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from lambdas.domain.actions import Path, Value
from lambdas.domain.host_record import FleetRecord
from lambdas.settings import Settings

DAY_S = 86400.0


def utc_day(now: float) -> str:
    return _day_name(int(now // DAY_S))


@functools.lru_cache(maxsize=8)
def _day_name(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * DAY_S, UTC).date().isoformat()


def day_start(now: float) -> float:
    """Midnight UTC before `now` (epoch seconds count whole UTC days)."""
    return now - now % DAY_S


def run_s_today(started_at: float, now: float) -> float:
    return max(0.0, now - max(started_at, day_start(now)))


def closed_today_s(fleet: FleetRecord, now: float) -> float:
    return fleet.budget_used_s if fleet.budget_day == utc_day(now) else 0.0


def used_today_s(fleet: FleetRecord, now: float) -> float:
    return closed_today_s(fleet, now) + sum(run_s_today(s, now) for s in fleet.runs.values())


def remaining_s(fleet: FleetRecord, settings: Settings, now: float) -> float:
    return settings.daily_budget_s - used_today_s(fleet, now)


def exhausted_at(fleet: FleetRecord, settings: Settings, now: float) -> float | None:
    """When the open runs use up today's budget (they use it together); None if not before
    midnight, or with nothing running."""
    if not fleet.runs:
        return None
    at = now + max(0.0, remaining_s(fleet, settings, now)) / len(fleet.runs)
    return at if at < day_start(now) + DAY_S else None


def open_run(host_id: str, now: float) -> dict[Path, Value]:
    """The fleet record's budget fields when `host_id`'s run opens now."""
    return {("runs", host_id): now}


def close_run(fleet: FleetRecord, host_id: str, now: float) -> dict[Path, Value]:
    """The fleet record's budget fields after `host_id`'s open run ends now."""
    started = fleet.runs.get(host_id)
    run = run_s_today(started, now) if started is not None else 0.0
    return {
        ("budget_day",): utc_day(now),
        ("budget_used_s",): round(closed_today_s(fleet, now) + run, 3),
        ("runs", host_id): None,
    }


def refusal(fleet: FleetRecord, settings: Settings, now: float) -> str | None:
    """Why a start must be refused for the budget, or None when there is budget left."""
    if remaining_s(fleet, settings, now) > 0:
        return None
    reset_in_s = day_start(now) + DAY_S - now
    hours, rest = divmod(int(reset_in_s), 3600)
    return (
        f"The daily GPU budget of {settings.daily_gpu_hours:g} h is used up "
        f"({used_today_s(fleet, now) / 3600:.1f} h today across the fleet). It resets at "
        f"00:00 UTC, in {hours} h {rest // 60} min; an operator can raise SPINUP_DAILY_GPU_HOURS."
    )
