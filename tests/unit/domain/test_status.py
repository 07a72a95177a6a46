"""What a user sees: the phase of each session's host, its socket URL once ready, the time to
ready from the fleet's cold starts, when it stops, and a message."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.domain.fleet import GroupInstance
from lambdas.domain.host_record import HostRecord
from lambdas.domain.model import Phase
from lambdas.domain.status import (
    DEFAULT_COLD_START_S,
    MIN_ETA_S,
    host_phase,
    session_status,
    start_phases,
    typical_cold_start_s,
    user_status,
)
from lambdas.settings import Settings
from tests.unit.domain.conftest import (
    IDLE_S,
    NOW,
    PER_HOST,
    WS_BASE,
    A,
    B,
    host,
    instance,
    lease,
    sessions,
    snapshot,
    warm,
)

BOOTING: dict[str, Any] = {"started": NOW - 40}
LEFT: dict[str, Any] = {"stop_pending": True, "run_open": False, "stopped_at": NOW - 3}


@pytest.mark.parametrize(
    ("record", "group_instance", "phase"),
    [
        (host(A, "fresh"), None, "stopped"),
        (host(A, "fresh"), warm(A), "stopped"),
        (host(A, "fresh", error="No capacity"), None, "error"),
        (host(A, "started", **BOOTING), instance(A, "Pending", ec2="pending"), "starting"),
        (host(A, "started", **BOOTING), instance(A, "Pending:Wait", ec2=None), "starting"),
        (host(A, "routed", **BOOTING), instance(A), "booting"),
        (host(A, "models_loaded", **BOOTING), instance(A), "booting"),
        (host(A, "ready_unrouted", **BOOTING), instance(A), "booting"),
        (host(A, "ready"), instance(A), "ready"),
        (host(A, **LEFT), instance(A, protected=False), "stopping"),
        (host(A, **LEFT), warm(A), "stopping"),
        (host(A, "ready"), None, "stopping"),
        (host(A, "ready"), instance(A, "Terminating", ec2="shutting-down"), "stopping"),
    ],
    ids=[
        "no_run",
        "no_run_warm",
        "no_run_with_an_error",
        "launching",
        "launch_hook_waiting_ec2_unknown",
        "running_and_routed",
        "models_loaded",
        "warm_but_not_routed_is_not_ready",
        "ready_and_routed",
        "leave_written",
        "leave_written_back_in_the_pool",
        "run_open_but_instance_gone",
        "run_open_but_terminating",
    ],
)
def test_host_phase(record: HostRecord, group_instance: GroupInstance | None, phase: Phase) -> None:
    assert host_phase(record, group_instance) == phase


@pytest.mark.parametrize(
    ("cold_starts", "typical"),
    [((), DEFAULT_COLD_START_S), ((100.0,), 100.0), ((100.0, 300.0, 200.0), 200.0)],
)
def test_the_typical_cold_start_is_the_median(
    cold_starts: tuple[float, ...], typical: float
) -> None:
    assert typical_cold_start_s(snapshot(cold_starts=cold_starts).fleet) == typical


def test_without_a_session_the_user_sees_stopped_and_how_busy_the_fleet_is(
    settings: Settings,
) -> None:
    others = snapshot(host(A), host(B), cold_starts=(100.0, 300.0, 200.0))
    status = user_status(others, settings, NOW, "ann")
    assert (status.phase, status.instance_state, status.sessions) == ("stopped", "none", ())
    assert (
        status.message
        == "Stopped. Press Start to start a GPU host. 2 GPU hosts running for others."
    )
    assert (status.eta_s, status.ws_url, status.stop_at) == (200, None, None)


def test_after_their_host_left_the_user_sees_why_until_they_start_again(
    settings: Settings,
) -> None:
    why = "It was idle: no frames for 300 s after the last client disconnected."
    after = snapshot(ended={"ann": why})
    assert user_status(after, settings, NOW, "ann").message == f"Stopped. {why}"
    assert user_status(after, settings, NOW, "bob").message == (
        "Stopped. Press Start to start a GPU host."
    )


def test_after_a_failed_scale_out_the_user_sees_the_error(settings: Settings) -> None:
    text = "No GPU host could be started: no capacity (instance types: g4dn.xlarge)."
    status = user_status(snapshot(error=text, message=text), settings, NOW, "ann")
    assert (status.phase, status.message, status.eta_s) == ("error", text, None)


@pytest.mark.parametrize(
    ("hosts", "max_size", "words"),
    [
        ([], 2, "Starting a GPU host (g4dn.xlarge)."),
        ([host(A)], 2, "Starting a GPU host (g4dn.xlarge)."),
        ([host(A), host(B)], 2, f"All 2 GPU hosts are full ({PER_HOST} sessions each)"),
        ([host(A)], 1, f"The GPU host is full ({PER_HOST} sessions)"),
    ],
    ids=["no_host_yet", "another_host_coming", "all_hosts_full", "the_one_host_full"],
)
def test_a_session_waiting_for_a_host_is_starting(
    hosts: list[HostRecord], max_size: int, words: str, settings: Settings
) -> None:
    held = sessions(("ann", "s1", None))
    given = snapshot(*hosts, sessions=held, max_size=max_size, cold_starts=(200.0,))
    status = user_status(given, settings, NOW, "ann")
    assert status.phase == "starting"
    assert status.instance_state == "pending"
    assert words in status.message
    assert status.ws_url is None
    assert status.eta_s == 200 - 60  # the lease is a minute old
    (session,) = status.sessions
    assert (session.session_id, session.host_id, session.phase) == ("s1", None, "starting")


def test_a_ready_session_gets_its_hosts_socket_and_when_it_stops(settings: Settings) -> None:
    ready = host(A, started=NOW - 1000, ready=NOW - 900, last_keepalive_at=NOW - 10)
    status = user_status(snapshot(ready, sessions=sessions(("ann", "s1", A))), settings, NOW, "ann")
    assert status.phase == "ready"
    assert status.ws_url == f"{WS_BASE}/{A}/inference" == settings.ws_url_for(A)
    assert status.stop_at == NOW - 10 + IDLE_S
    assert status.eta_s == 0
    assert status.instance_state == "running"
    assert status.message.startswith("Ready. Stops at ")
    assert status.message.endswith(" UTC if unused.")


def test_each_session_has_its_own_hosts_socket_and_the_newest_leads(settings: Settings) -> None:
    given = snapshot(
        host(A),
        host(B, "models_loaded", **BOOTING),
        sessions=sessions(("ann", "s-old", A), ("ann", "s-new", B)),
    )
    status = user_status(given, settings, NOW, "ann")
    old, new = status.sessions
    assert (old.session_id, old.phase, old.ws_url) == ("s-old", "ready", settings.ws_url_for(A))
    assert (new.session_id, new.phase, new.ws_url) == ("s-new", "booting", None)
    assert (status.phase, status.ws_url) == ("booting", None)
    assert status.message == "Models loaded; warming up."


@pytest.mark.parametrize(
    ("milestone", "words"),
    [
        ("routed", "GPU host running; starting the inference server."),
        ("backend_up", "Backend up; loading models."),
        ("models_loaded", "Models loaded; warming up."),
        ("ready_unrouted", "Models loaded; warming up."),
    ],
)
def test_a_booting_host_says_how_far_it_got(milestone: Any, words: str, settings: Settings) -> None:
    given = snapshot(host(A, milestone, **BOOTING), sessions=sessions(("ann", "s1", A)))
    assert user_status(given, settings, NOW, "ann").message == words


@pytest.mark.parametrize(
    ("cold_starts", "started", "eta"),
    [
        ((100.0, 300.0, 200.0), NOW - 40, 160),
        ((200.0,), NOW - 250, MIN_ETA_S),
        ((), NOW - 40, round(DEFAULT_COLD_START_S) - 40),
    ],
    ids=["median_minus_elapsed", "overdue_still_says_a_few_seconds", "default_before_any"],
)
def test_the_eta_counts_from_the_hosts_start(
    cold_starts: tuple[float, ...], started: float, eta: int, settings: Settings
) -> None:
    given = snapshot(
        host(A, "backend_up", started=started),
        sessions=sessions(("ann", "s1", A)),
        cold_starts=cold_starts,
    )
    assert user_status(given, settings, NOW, "ann").eta_s == eta


def test_a_session_on_a_leaving_host_says_stopping_and_when(settings: Settings) -> None:
    given = snapshot(
        host(A, **LEFT),
        instances=[instance(A, protected=False)],
        sessions=sessions(("ann", "s1", A)),
    )
    status = user_status(given, settings, NOW, "ann")
    assert (status.phase, status.stop_at) == ("stopping", NOW - 3)
    assert status.message == "Your GPU host is stopping."


def test_an_expired_lease_is_not_shown(settings: Settings) -> None:
    held = {"ann": {"s-old": lease(A, created=NOW - 7200, expires=NOW - 1)}}
    assert user_status(snapshot(host(A), sessions=held), settings, NOW, "ann").sessions == ()


def test_another_users_sessions_are_not_shown(settings: Settings) -> None:
    given = snapshot(host(A), sessions=sessions(("bob", "s1", A)))
    assert user_status(given, settings, NOW, "ann").sessions == ()


def test_the_session_status_of_a_starting_host_names_its_type(settings: Settings) -> None:
    given = snapshot(
        host(A, "started", **BOOTING),
        instances=[instance(A, "Pending", ec2="pending", instance_type="g5.xlarge")],
    )
    status = session_status(given, settings, NOW, "s1", lease(A))
    assert (status.phase, status.instance_state) == ("starting", "pending")
    assert status.message == "Starting a GPU host (g5.xlarge)."


@pytest.mark.parametrize(
    ("milestone", "phases"),
    [
        ("started", {}),
        ("routed", {"instance_running": 5.0}),
        ("backend_up", {"instance_running": 5.0, "backend_up": 30.0}),
        (
            "ready",
            {"instance_running": 5.0, "backend_up": 30.0, "models_loaded": 60.0, "ready": 100.0},
        ),
    ],
)
def test_the_status_shows_each_start_phase_the_host_reached(
    milestone: Any, phases: dict[str, float], settings: Settings
) -> None:
    """The cold start as measured: seconds from the host's start to each phase, so that an
    operator reads the real figures (docs/performance.md)."""
    record = host(A, milestone, started=NOW - 120)
    given = snapshot(record, sessions=sessions(("ann", "s1", A)))
    status = user_status(given, settings, NOW, "ann")
    assert status.start_phases == phases
    assert status.sessions[0].start_phases == phases


def test_phases_of_an_earlier_run_do_not_count(settings: Settings) -> None:
    """A milestone written before this run's start (the previous run's) is not this run's."""
    record = host(A, "started", started=NOW - 20, ready_at=NOW - 500, backend_up_at=NOW - 600)
    assert start_phases(record) == {}
