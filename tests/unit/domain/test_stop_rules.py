"""When a running instance stops, and why: idle timeouts, release grace, boot grace, caps.

Each case is a host situation and the stop it must plan; `decide` is then checked on both
sides of that moment (one second before: nothing; at it: the stop, for that reason).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lambdas.domain.actions import Transition
from lambdas.domain.decide import decide
from lambdas.domain.host_record import HostRecord, SessionLease
from lambdas.domain.model import Snapshot
from lambdas.domain.stop_rules import REPORT_LAG_S, StopReason, explain, plan_stop
from lambdas.settings import Settings

T0 = 1_800_000_000.0
"""The run's start in every case below (08:00 UTC)."""
READY = T0 + 200
LEASE = {"alice": {"a" * 32: SessionLease(created_at=T0, expires_at=T0 + 28800)}}
RUN = {"desired": "running", "run_seq": 1, "cold_start_seq": 1, "run_open": True, "started_at": T0}

SnapshotFactory = Callable[..., Snapshot]
HostFactory = Callable[..., HostRecord]

# situation → (host fields, expected stop time, reason), with the default settings:
# idle 300 s disconnected / 900 s connected, boot grace 1200 s, release grace 60 s.
CASES: dict[str, tuple[dict[str, Any], float, StopReason]] = {
    "booting_stops_only_at_the_end_of_the_boot_grace": (
        {**RUN, "sessions": LEASE},
        T0 + 1200,
        StopReason.BOOT_TIMEOUT,
    ),
    "readiness_steps_from_an_earlier_run_do_not_count": (
        {**RUN, "ready_at": T0 - 10, "models_loaded_at": T0 - 20},
        T0 + 1200,
        StopReason.BOOT_TIMEOUT,
    ),
    "ready_and_never_used_stops_after_the_idle_timeout": (
        {**RUN, "ready_at": READY},
        READY + 300,
        StopReason.IDLE_DISCONNECTED,
    ),
    "idle_is_counted_from_the_latest_moment_frames_may_have_flowed": (
        {**RUN, "ready_at": READY, "last_inference_at": T0 + 5000},
        T0 + 5000 + REPORT_LAG_S + 300,
        StopReason.IDLE_DISCONNECTED,
    ),
    "a_connected_client_sending_nothing_gets_the_longer_timeout": (
        {**RUN, "ready_at": READY, "last_inference_at": T0 + 5000, "connected_sessions": 2},
        T0 + 5000 + REPORT_LAG_S + 900,
        StopReason.IDLE_CONNECTED,
    ),
    "a_keepalive_counts_as_activity": (
        {**RUN, "ready_at": READY, "last_inference_at": T0 + 5000, "last_keepalive_at": T0 + 6000},
        T0 + 6000 + 300,
        StopReason.IDLE_DISCONNECTED,
    ),
    "a_start_request_counts_as_activity": (
        {**RUN, "ready_at": READY, "last_start_request_at": T0 + 7000},
        T0 + 7000 + 300,
        StopReason.IDLE_DISCONNECTED,
    ),
    "releasing_the_last_session_stops_after_the_release_grace": (
        {**RUN, "ready_at": READY, "last_inference_at": T0 + 1900, "last_release_at": T0 + 2000},
        T0 + 2000 + 60,
        StopReason.RELEASED,
    ),
    "a_release_right_after_frames_waits_for_the_report_lag": (
        {**RUN, "ready_at": READY, "last_inference_at": T0 + 1990, "last_release_at": T0 + 2000},
        T0 + 1990 + REPORT_LAG_S + 60,
        StopReason.RELEASED,
    ),
    "frames_after_the_release_mean_someone_still_uses_it": (
        {
            **RUN,
            "ready_at": READY,
            "last_release_at": T0 + 2000,
            "last_inference_at": T0 + 2100,
            "connected_sessions": 1,
        },
        T0 + 2100 + REPORT_LAG_S + 900,
        StopReason.IDLE_CONNECTED,
    ),
    "a_release_while_other_sessions_remain_changes_nothing": (
        {**RUN, "ready_at": READY, "sessions": LEASE, "last_release_at": T0 + 2000},
        READY + 300,
        StopReason.IDLE_DISCONNECTED,
    ),
    "a_release_from_an_earlier_run_does_not_count": (
        {**RUN, "ready_at": READY, "last_release_at": T0 - 100},
        READY + 300,
        StopReason.IDLE_DISCONNECTED,
    ),
    "a_release_during_boot_stops_once_ready": (
        {**RUN, "ready_at": T0 + 900, "last_release_at": T0 + 100},
        T0 + 900,
        StopReason.RELEASED,
    ),
    "one_run_is_capped_however_busy": (
        {**RUN, "ready_at": READY, "last_inference_at": T0 + 28790, "connected_sessions": 1},
        T0 + 28800,
        StopReason.MAX_RUN,
    ),
    "the_daily_budget_stops_a_busy_run": (
        {
            **RUN,
            "ready_at": READY,
            "last_inference_at": T0 + 3000,
            "connected_sessions": 1,
            "budget_day": "2027-01-15",
            "budget_used_s": 12 * 3600 - 3000,
        },
        T0 + 3000,
        StopReason.BUDGET,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_stop(case: str, settings: Settings, make_host: HostFactory) -> None:
    fields, at, reason = CASES[case]
    plan = plan_stop(make_host(**fields), settings, T0 + 100)
    assert plan is not None
    assert plan.reason == reason
    assert plan.at == pytest.approx(at)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("offset_s", "stops"), [(-1.0, False), (0.0, True), (120.0, True)])
def test_decide_stops_exactly_when_planned(
    case: str, offset_s: float, stops: bool, settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    """Given a running instance, when the clock reaches the planned stop, then decide stops
    it (and never a second earlier)."""
    fields, at, reason = CASES[case]
    actions = decide(make_snapshot("running", **fields), settings, at + offset_s)
    stops_made = [a for a in actions if isinstance(a, Transition) and a.name == "stop"]
    stop_reasons = [stop.changes["stop_reason"] for stop in stops_made]
    assert stop_reasons == ([reason.value] if stops else [])


@pytest.mark.parametrize("grace_fraction", [0.0, 0.5, 0.99])
def test_nothing_stops_a_slow_boot_within_the_grace(
    grace_fraction: float, settings: Settings, make_snapshot: SnapshotFactory
) -> None:
    """Even with every other rule due (no session, release long ago, budget gone)."""
    fields = {
        **RUN,
        "last_release_at": T0 + 1,
        "budget_day": "2027-01-15",
        "budget_used_s": 12 * 3600,
    }
    now = T0 + grace_fraction * settings.boot_grace_s
    assert decide(make_snapshot("running", **fields), settings, now) == []


def test_status_polls_are_not_activity(settings: Settings, make_host: HostFactory) -> None:
    """The plan depends only on recorded activity: reading it any number of times, at any
    moment, gives the same stop time."""
    host = make_host(**RUN, ready_at=READY)
    plans = {plan_stop(host, settings, T0 + t) for t in (300, 400, 499)}
    assert len(plans) == 1


def test_no_open_run_no_plan(settings: Settings, make_host: HostFactory) -> None:
    assert plan_stop(make_host(), settings, T0) is None


@pytest.mark.parametrize("reason", list(StopReason))
def test_every_reason_is_explained(reason: StopReason, settings: Settings) -> None:
    text = explain(reason, settings)
    assert text.endswith(".")
    assert len(text) > 20
