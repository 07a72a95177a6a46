"""When a host leaves if nothing else happens, and why: idle timeouts, release grace, boot
grace, the run cap and the fleet's budget (`stop_rules.plan_stop`).

Each case is a host situation and the stop it must plan; `decide` is checked on both sides of
that moment in test_decide_stop.py, from the same table.
"""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.domain.stop_rules import REPORT_LAG_S, StopReason, explain, last_activity, plan_stop
from lambdas.settings import Settings
from tests.unit.domain.conftest import (
    BOOT_GRACE_S,
    IDLE_CONNECTED_S,
    IDLE_S,
    MAX_RUN_S,
    NOW,
    RELEASE_GRACE_S,
    host,
)

T0 = NOW
"""The run's start in every case."""
READY = T0 + 100
"""When the ready hosts below became ready (and were routed)."""
LAG = REPORT_LAG_S


class Case:
    """A host at a milestone with its activity; `placed`: sessions placed on it;
    `budget_at`: when the fleet's budget runs out (None: not today)."""

    def __init__(
        self,
        milestone: Any,
        at: float,
        reason: StopReason,
        *,
        placed: int = 0,
        budget_at: float | None = None,
        **fields: Any,
    ) -> None:
        self.milestone = milestone
        self.at = at
        self.reason = reason
        self.placed = placed
        self.budget_at = budget_at
        self.fields = fields

    def host(self) -> Any:
        return host(milestone=self.milestone, started=T0, ready=READY, **self.fields)


CASES: dict[str, Case] = {
    "given_a_booting_host_then_it_stops_only_at_the_end_of_the_boot_grace": Case(
        "models_loaded", T0 + BOOT_GRACE_S, StopReason.BOOT_TIMEOUT, placed=1
    ),
    "given_readiness_from_an_earlier_run_then_it_is_still_booting": Case(
        "routed",
        T0 + BOOT_GRACE_S,
        StopReason.BOOT_TIMEOUT,
        ready_at=T0 - 10,
    ),
    "given_a_warm_backend_without_its_route_then_it_is_not_ready": Case(
        "ready_unrouted", T0 + BOOT_GRACE_S, StopReason.BOOT_TIMEOUT
    ),
    "given_a_route_from_an_earlier_run_then_it_is_not_ready": Case(
        "ready_unrouted", T0 + BOOT_GRACE_S, StopReason.BOOT_TIMEOUT, routed_at=T0 - 5
    ),
    "given_ready_and_never_used_then_the_idle_timeout_from_ready": Case(
        "ready", READY + IDLE_S, StopReason.IDLE_DISCONNECTED
    ),
    "given_frames_then_idle_counts_from_the_latest_moment_they_may_have_flowed": Case(
        "ready",
        T0 + 2000 + LAG + IDLE_S,
        StopReason.IDLE_DISCONNECTED,
        placed=1,
        last_inference_at=T0 + 2000,
    ),
    "given_a_connected_client_sending_nothing_then_the_longer_timeout": Case(
        "ready",
        T0 + 2000 + LAG + IDLE_CONNECTED_S,
        StopReason.IDLE_CONNECTED,
        placed=1,
        last_inference_at=T0 + 2000,
        connected_sessions=2,
    ),
    "given_a_keepalive_then_it_counts_as_activity": Case(
        "ready",
        T0 + 2500 + IDLE_S,
        StopReason.IDLE_DISCONNECTED,
        placed=1,
        last_inference_at=T0 + 2000,
        last_keepalive_at=T0 + 2500,
    ),
    "given_a_session_placed_on_it_then_the_placement_counts_as_activity": Case(
        "ready",
        T0 + 2200 + IDLE_S,
        StopReason.IDLE_DISCONNECTED,
        placed=1,
        last_start_request_at=T0 + 2200,
    ),
    "given_the_last_session_released_then_it_stops_after_the_release_grace": Case(
        "ready",
        T0 + 2000 + RELEASE_GRACE_S,
        StopReason.RELEASED,
        last_inference_at=T0 + 1960,
        last_release_at=T0 + 2000,
    ),
    "given_a_release_right_after_frames_then_the_grace_waits_for_the_report_lag": Case(
        "ready",
        T0 + 1995 + LAG + RELEASE_GRACE_S,
        StopReason.RELEASED,
        last_inference_at=T0 + 1995,
        last_release_at=T0 + 2000,
    ),
    "given_frames_after_the_release_then_someone_still_uses_it": Case(
        "ready",
        T0 + 2100 + LAG + IDLE_CONNECTED_S,
        StopReason.IDLE_CONNECTED,
        last_release_at=T0 + 2000,
        last_inference_at=T0 + 2100,
        connected_sessions=1,
    ),
    "given_a_release_while_sessions_stay_placed_then_the_idle_rules_decide": Case(
        "ready",
        T0 + 1990 + IDLE_S,
        StopReason.IDLE_DISCONNECTED,
        placed=1,
        last_start_request_at=T0 + 1990,
        last_release_at=T0 + 2000,
    ),
    "given_the_same_release_with_no_session_left_then_the_release_grace": Case(
        "ready",
        T0 + 2000 + RELEASE_GRACE_S,
        StopReason.RELEASED,
        last_start_request_at=T0 + 1990,
        last_release_at=T0 + 2000,
    ),
    "given_a_release_from_an_earlier_run_then_it_does_not_count": Case(
        "ready", READY + IDLE_S, StopReason.IDLE_DISCONNECTED, last_release_at=T0 - 100
    ),
    "given_a_release_during_boot_then_it_stops_once_ready": Case(
        "ready",
        T0 + 250,
        StopReason.RELEASED,
        ready_at=T0 + 250,
        last_release_at=T0 + 50,
    ),
    "given_a_busy_host_then_one_run_is_capped": Case(
        "ready",
        T0 + MAX_RUN_S,
        StopReason.MAX_RUN,
        placed=2,
        last_inference_at=T0 + MAX_RUN_S - 10,
        connected_sessions=2,
    ),
    "given_the_fleet_budget_runs_out_then_a_busy_host_stops": Case(
        "ready",
        T0 + 2500,
        StopReason.BUDGET,
        placed=1,
        budget_at=T0 + 2500,
        last_inference_at=T0 + 2480,
        connected_sessions=1,
    ),
    "given_the_budget_runs_out_while_booting_then_the_boot_grace_protects_it": Case(
        "backend_up", T0 + BOOT_GRACE_S, StopReason.BUDGET, placed=1, budget_at=T0 + 10
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_plan_stop(case: str, settings: Settings) -> None:
    given = CASES[case]
    plan = plan_stop(given.host(), settings, placed=given.placed, out_of_budget=given.budget_at)
    assert plan is not None
    assert plan.reason == given.reason
    assert plan.at == pytest.approx(given.at)


@pytest.mark.parametrize("milestone", ["started", "backend_up", "models_loaded", "ready_unrouted"])
@pytest.mark.parametrize(
    "threat",
    [
        {"budget_at": T0},
        {"last_release_at": T0 + 1},
        {"last_inference_at": T0 + 1, "connected_sessions": 0},
    ],
    ids=["budget_gone", "released_at_once", "frames_reported_early"],
)
def test_nothing_stops_a_booting_host_within_the_boot_grace(
    milestone: Any, threat: dict[str, Any], settings: Settings
) -> None:
    fields = dict(threat)
    budget_at = fields.pop("budget_at", None)
    record = host(milestone=milestone, started=T0, **fields)
    plan = plan_stop(record, settings, placed=0, out_of_budget=budget_at)
    assert plan is not None
    assert plan.at >= T0 + BOOT_GRACE_S


def test_status_polls_are_not_activity(settings: Settings) -> None:
    """The plan depends on recorded activity only: no clock, no reads."""
    record = host(milestone="ready", started=T0, ready=READY)
    plans = {plan_stop(record, settings, placed=0, out_of_budget=None) for _ in range(3)}
    assert len(plans) == 1


@pytest.mark.parametrize("fields", [{"milestone": "fresh"}, {"run_open": False}])
def test_no_open_run_no_plan(fields: dict[str, Any], settings: Settings) -> None:
    assert plan_stop(host(**fields), settings, placed=0, out_of_budget=None) is None


def test_last_activity_is_none_before_ready() -> None:
    assert last_activity(host(milestone="ready_unrouted", last_keepalive_at=T0 + 5)) is None
    assert last_activity(host(milestone="ready", started=T0, ready=READY)) == READY


@pytest.mark.parametrize("reason", list(StopReason))
def test_every_reason_is_explained(reason: StopReason, settings: Settings) -> None:
    text = explain(reason, settings)
    assert text.endswith(".")
    assert len(text) > 20
