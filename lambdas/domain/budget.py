"""The daily GPU-hour budget: how much of today (UTC) the instance has run, and what is left.

Closed runs are summed in the host record (`budget_day`, `budget_used_s`); the open run is
counted from its start (or from midnight, for a run that began yesterday) up to now.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from lambdas.domain.actions import Value
from lambdas.domain.host_record import HostRecord
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


def open_run_s_today(host: HostRecord, now: float) -> float:
    if not host.run_open or host.started_at is None:
        return 0.0
    return max(0.0, now - max(host.started_at, day_start(now)))


def used_today_s(host: HostRecord, now: float) -> float:
    closed = host.budget_used_s if host.budget_day == utc_day(now) else 0.0
    return closed + open_run_s_today(host, now)


def remaining_s(host: HostRecord, settings: Settings, now: float) -> float:
    return settings.daily_budget_s - used_today_s(host, now)


def exhausted_at(host: HostRecord, settings: Settings, now: float) -> float | None:
    """When the open run uses up today's budget; None if not before midnight."""
    at = now + max(0.0, remaining_s(host, settings, now))
    return at if at < day_start(now) + DAY_S else None


def close_run(host: HostRecord, now: float) -> dict[str, Value]:
    """The budget fields after the open run ends now."""
    return {"budget_day": utc_day(now), "budget_used_s": round(used_today_s(host, now), 3)}


def refusal(host: HostRecord, settings: Settings, now: float) -> str | None:
    """Why a start must be refused for the budget, or None when there is budget left."""
    if remaining_s(host, settings, now) > 0:
        return None
    reset_in_s = day_start(now) + DAY_S - now
    hours, rest = divmod(int(reset_in_s), 3600)
    return (
        f"The daily GPU budget of {settings.daily_gpu_hours:g} h is used up "
        f"({used_today_s(host, now) / 3600:.1f} h today). It resets at 00:00 UTC, "
        f"in {hours} h {rest // 60} min; an operator can raise SPINUP_DAILY_GPU_HOURS."
    )
