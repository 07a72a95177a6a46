"""The fleet against moto's Auto Scaling: concurrent starts and scale-out, hosts stopping on
their own idle timeouts, the leave through protection and desired capacity, the stop lock,
capacity errors and a busy group, replacement of a host that never becomes ready."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from lambdas.aws.clients import Clients
from lambdas.domain.decide import decide
from lambdas.domain.host_record import heartbeat_update, sessions_update
from lambdas.domain.stop_rules import REPORT_LAG_S
from lambdas.reconcile import handler as reconcile_handler
from lambdas.reconcile.handler import STATE_CHANGE, handle
from lambdas.reconcile.service import execute, read_snapshot, reconcile_once
from lambdas.settings import Settings
from tests.integration.control.harness import (
    MAX_HOSTS,
    T0,
    TYPES,
    Aws,
    Clock,
    Issuer,
    RecordingFleet,
    host_of,
    settle,
    start,
    status,
)

pytestmark = pytest.mark.timeout(90)

SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}

NO_CAPACITY = (
    "Launching a new EC2 instance. Status Reason: We currently do not have sufficient "
    "g5.xlarge capacity in zones with support for 'gp3' volumes."
)


def state_change(instance_id: str, state: str) -> dict[str, Any]:
    return {
        "source": "aws.ec2",
        "detail-type": STATE_CHANGE,
        "detail": {"instance-id": instance_id, "state": state},
    }


async def ready_host(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock, user: str = "alice"
) -> tuple[str, str]:
    """A session of `user` on a host that became ready 120 s after its start: (session, host)."""
    session = await start(api, issuer, user)
    await status(api, issuer, user)  # the host's run opens and the session is placed on it
    await status(api, issuer, user)  # its route is written
    host = host_of(aws, user, session)
    assert host is not None
    aws.report_ready(host, clock.advance(120))
    assert (await status(api, issuer, user))["phase"] == "ready"
    return session, host


@pytest.mark.parametrize(
    ("overrides", "users", "hosts"),
    [
        ({"sessions_per_host": 25}, 50, 2),
        ({"sessions_per_host": 50}, 50, 1),
        ({"sessions_per_host": 8}, 16, 2),
        ({"sessions_per_host": 8}, 5, 1),
    ],
    ids=["50_users_2_hosts", "50_users_1_host", "16_users_2_full_hosts", "5_users_1_host"],
)
async def test_concurrent_starts_change_the_capacity_once_per_needed_host(
    users: int,
    hosts: int,
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    fleet: RecordingFleet,
    settings: Settings,
    clients: Clients,
    clock: Clock,
) -> None:
    """Given an empty fleet, when many users press Start at once (each request in its own
    worker thread, each reconciling), then the desired capacity is raised once per host the
    sessions need, every session is placed, and no host holds more than its share."""
    answers = await asyncio.gather(
        *(api.post("/api/sessions", headers=issuer.headers(f"user-{n}")) for n in range(users))
    )
    assert [a.status_code for a in answers] == [202] * users
    settle(settings, clients, clock())

    changes = fleet.capacity_changes()
    assert changes == sorted(set(changes)), "the capacity only rose, never twice to one value"
    assert changes[-1] == hosts
    assert len(changes) <= hosts
    assert aws.desired_capacity() == hosts
    running = aws.in_service()
    assert len(running) == hosts
    leases = [lease for held in aws.fleet().sessions.values() for lease in held.values()]
    assert len(leases) == users
    per_host = Counter(lease.host_id for lease in leases)
    assert set(per_host) == set(running), "every session placed, on the group's hosts"
    assert max(per_host.values()) <= settings.sessions_per_host


@pytest.mark.parametrize("overrides", [{"sessions_per_host": 1}])
@pytest.mark.parametrize("idle_user", ["alice", "bob"])
async def test_two_users_on_two_hosts_each_host_stops_on_its_own_idle_timeout(
    idle_user: str,
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    fleet: RecordingFleet,
    clock: Clock,
) -> None:
    """Given alice and bob on two hosts (one session per host), when only one of them sends
    frames, then the other's host leaves on its idle timeout — unprotected alone, the desired
    capacity lowered — while the busy one keeps running until its own idle timeout."""
    sessions = {user: await start(api, issuer, user) for user in ("alice", "bob")}
    for user in sessions:
        await status(api, issuer, user)
    hosts = {user: str(host_of(aws, user, sid)) for user, sid in sessions.items()}
    assert hosts["alice"] != hosts["bob"]
    assert sorted(aws.in_service()) == sorted(hosts.values())
    ready_at = clock.advance(120)
    for host in hosts.values():
        aws.report_ready(host, ready_at)
    busy_user = "bob" if idle_user == "alice" else "alice"
    idle, busy = hosts[idle_user], hosts[busy_user]
    for user in sessions:
        assert (await status(api, issuer, user))["phase"] == "ready"
    idle_stop = (await status(api, issuer, idle_user))["stop_at"]
    assert idle_stop == pytest.approx(ready_at + 300)

    while clock.now + 30 < idle_stop:
        aws.report(busy, heartbeat_update(clock.advance(30), sessions=1))
        assert (await status(api, issuer, idle_user))["phase"] == "ready"
    last_frame = clock.now
    clock.now = idle_stop
    left = await status(api, issuer, idle_user)

    assert left["phase"] == "stopped"
    assert left["sessions"] == []
    assert "1 GPU host running for others" in left["message"]
    assert aws.host(idle).stop_reason == "idle_disconnected"
    assert aws.in_service() == [busy]
    assert aws.desired_capacity() == 1
    assert [(h, p) for h, p in fleet.protections() if not p] == [(idle, False)]
    assert aws.protected() == {busy: True}
    assert (await status(api, issuer, busy_user))["phase"] == "ready"

    aws.report(busy, sessions_update(0))  # the busy user closes the tab
    busy_stop = (await status(api, issuer, busy_user))["stop_at"]
    assert busy_stop == pytest.approx(last_frame + REPORT_LAG_S + 300)
    clock.now = busy_stop - 1
    assert (await status(api, issuer, busy_user))["phase"] == "ready"
    clock.now = busy_stop
    assert (await status(api, issuer, busy_user))["phase"] == "stopped"
    assert aws.in_service() == []
    assert aws.desired_capacity() == 0
    assert aws.host(busy).stop_reason == "idle_disconnected"


@pytest.mark.parametrize("overrides", [{"sessions_per_host": 1}])
@pytest.mark.parametrize("other_protected", [True, False], ids=["other_protected", "not"])
async def test_a_leaving_host_unprotects_exactly_itself(
    other_protected: bool,
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    fleet: RecordingFleet,
    settings: Settings,
    clients: Clients,
    clock: Clock,
) -> None:
    """Given two ready hosts, when the second one's user releases it, then it is the one the
    group takes out — even when someone lifted the other's protection meanwhile (the leave
    protects it again first: the group scales in any unprotected instance)."""
    await ready_host(api, issuer, aws, clock, "alice")
    session, leaving = await ready_host(api, issuer, aws, clock, "bob")
    staying = next(h for h in aws.in_service() if h != leaving)
    if not other_protected:
        aws.client("autoscaling").set_instance_protection(
            AutoScalingGroupName=aws.group_name,
            InstanceIds=[staying],
            ProtectedFromScaleIn=False,
        )
    fleet.calls.clear()

    await api.delete(f"/api/sessions/{session}", headers=issuer.headers("bob"))
    clock.advance(settings.release_grace_s)
    done = settle(settings, clients, clock())

    assert "leave" in done
    assert aws.in_service() == [staying]
    assert aws.protected() == {staying: True}
    unprotected = [h for h, protected in fleet.protections() if not protected]
    assert unprotected == [leaving]
    assert fleet.capacity_changes() == [1]
    assert aws.fleet().desired_capacity == 1
    assert aws.host(leaving).stop_reason == "released"
    assert (await status(api, issuer, "alice"))["phase"] == "ready"


@pytest.mark.parametrize("activity", ["keepalive", "heartbeat"])
async def test_activity_wins_over_a_leave_decided_on_an_older_generation(
    activity: str,
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    fleet: RecordingFleet,
    settings: Settings,
    clients: Clients,
    clock: Clock,
) -> None:
    """Given an idle host whose leave was just decided, when a keepalive (Keep running) or
    the backend's heartbeat lands before the leave is written, then the leave is abandoned:
    the host keeps running, protected, and the capacity is unchanged."""
    session, host = await ready_host(api, issuer, aws, clock)
    clock.advance(settings.idle_after_disconnect_s + 1)
    snapshot = read_snapshot(clients)
    actions = tuple(decide(snapshot, settings, clock()))
    assert "leave" in [action.name for action in actions]
    fleet.calls.clear()

    if activity == "keepalive":
        kept = await api.post(f"/api/sessions/{session}/keepalive", headers=issuer.headers())
        assert kept.status_code == 200
        assert kept.json()["phase"] == "ready"
    else:
        aws.report(host, heartbeat_update(clock(), sessions=1))
    done = execute(actions, clients)

    assert "leave" not in done
    assert fleet.capacity_changes() == []
    assert aws.in_service() == [host]
    assert aws.protected() == {host: True}
    assert aws.fleet().desired_capacity == 1
    assert (await status(api, issuer))["phase"] == "ready"


@pytest.mark.parametrize("overrides", [{"daily_gpu_hours": 1}])
async def test_a_busy_host_leaves_at_the_budget_even_when_its_frames_race_the_leave(
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    settings: Settings,
    clients: Clients,
    clock: Clock,
) -> None:
    """Given a host streaming frames when the fleet's daily budget runs out, when its backend
    reports frames between the leave's decision and its write, then the host leaves all the
    same: a hard limit is no idle stop, and activity does not win over it."""
    _, host = await ready_host(api, issuer, aws, clock)
    clock.now = T0 + 3600 + 1  # one host, one GPU-hour: the budget is used up
    aws.report(host, heartbeat_update(clock.now - 10, sessions=1))
    actions = tuple(decide(read_snapshot(clients), settings, clock()))
    assert "leave" in [action.name for action in actions]

    aws.report(host, heartbeat_update(clock.now, sessions=1))
    done = execute(actions, clients)

    assert "leave" in done
    assert aws.host(host).stop_reason == "budget"
    assert aws.in_service() == []


async def test_without_a_race_the_same_leave_goes_through(
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    settings: Settings,
    clients: Clients,
    clock: Clock,
) -> None:
    _, host = await ready_host(api, issuer, aws, clock)
    clock.advance(settings.idle_after_disconnect_s + 1)

    result = reconcile_once(settings, clients, clock())

    assert result.done == (
        "leave",
        f"delete_route({host})",
        f"unprotect({host})",
        "set_desired_capacity(0)",
    )
    assert aws.in_service() == []
    assert aws.fleet().cold_starts == (120.0,)


async def test_release_stops_the_host_after_the_grace(
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    settings: Settings,
    clock: Clock,
) -> None:
    session, host = await ready_host(api, issuer, aws, clock)
    clock.advance(30)

    released = await api.delete(f"/api/sessions/{session}", headers=issuer.headers())

    assert released.status_code == 200
    assert released.json() == {"session_id": session, "released": True, "phase": "stopped"}
    clock.advance(settings.release_grace_s - 1)
    await status(api, issuer)
    assert aws.in_service() == [host]
    clock.advance(1)
    await status(api, issuer)
    assert aws.in_service() == []
    assert aws.desired_capacity() == 0
    record = aws.host(host)
    assert (record.stop_reason, record.run_open) == ("released", False)
    assert "Every session was released" in record.message


async def test_no_capacity_reaches_the_status_as_an_error_with_what_was_tried(
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    fleet: RecordingFleet,
    clock: Clock,
) -> None:
    """Given no capacity for any of the group's types (injected: moto always has some), when
    a user presses Start, then the next status poll (seconds later) says so, with the types
    tried; nothing stays half started, and a later Start tries again."""
    fleet.no_capacity(NO_CAPACITY)

    created = await api.post("/api/sessions", headers=issuer.headers())
    assert created.status_code == 202
    assert created.json()["phase"] == "starting"
    clock.advance(5)
    current = await status(api, issuer)

    assert current["phase"] == "error"
    assert NO_CAPACITY in current["message"]
    assert f"instance types: {', '.join(TYPES)}" in current["message"]
    assert "Try again in a few minutes" in current["message"]
    assert current["sessions"] == []
    assert aws.desired_capacity() == 0
    assert aws.fleet().desired_capacity == 0
    assert aws.in_service() == []

    fleet.no_capacity(None)
    session = await start(api, issuer)
    await status(api, issuer)
    again = await status(api, issuer)
    assert again["phase"] == "booting"
    assert host_of(aws, "alice", session) in aws.in_service()
    assert aws.fleet().error is None


async def test_a_scale_out_refused_while_the_group_is_busy_is_converged_next_time(
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    fleet: RecordingFleet,
) -> None:
    fleet.busy(1)

    session = await start(api, issuer)

    assert aws.fleet().desired_capacity == 1
    assert aws.desired_capacity() == 0
    assert aws.in_service() == []
    await status(api, issuer)
    assert aws.desired_capacity() == 1
    assert len(aws.in_service()) == 1
    await status(api, issuer)
    await status(api, issuer)
    assert host_of(aws, "alice", session) == aws.in_service()[0]


async def test_a_scale_in_refused_while_the_group_is_busy_is_converged_next_time(
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    fleet: RecordingFleet,
    settings: Settings,
    clock: Clock,
) -> None:
    _, host = await ready_host(api, issuer, aws, clock)
    clock.advance(settings.idle_after_disconnect_s + 1)
    fleet.busy(1)

    assert (await status(api, issuer))["phase"] == "stopped"

    assert aws.host(host).stop_pending
    assert aws.protected() == {host: False}
    assert aws.desired_capacity() == 1
    assert aws.in_service() == [host]
    clock.advance(60)
    await status(api, issuer)
    assert aws.desired_capacity() == 0
    assert aws.in_service() == []
    assert [h for h, protected in fleet.protections() if not protected] == [host]


@pytest.mark.parametrize("overrides", [{"boot_grace_s": 600, "max_replacements": 1}])
async def test_a_host_never_ready_is_replaced_then_given_up_on(
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    fleet: RecordingFleet,
    settings: Settings,
    clock: Clock,
) -> None:
    """Given a host that never becomes ready, when the boot grace passes, then the group
    replaces it and the session waits for the replacement; when that one is not ready
    either (max_replacements=1), the fleet gives up and says so."""
    session = await start(api, issuer)
    await status(api, issuer)
    await status(api, issuer)
    first = host_of(aws, "alice", session)
    assert first is not None

    clock.advance(settings.boot_grace_s)
    await status(api, issuer)
    assert [c.args for c in fleet.calls if c.name == "replace"] == [(first,)]
    (second,) = aws.in_service()
    assert second != first
    assert aws.desired_capacity() == 1
    await status(api, issuer)
    await status(api, issuer)
    assert host_of(aws, "alice", session) == second

    clock.advance(settings.boot_grace_s)
    gave_up = await status(api, issuer)

    assert gave_up["phase"] == "error"
    assert "2 GPU hosts in a row were not ready within 600 s" in gave_up["message"]
    assert aws.in_service() == []
    assert aws.desired_capacity() == 0


async def test_the_schedule_stops_a_host_started_outside_spinup(
    aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    """A host someone started from the console is adopted (a run, a route, protection) and
    stopped when idle like any other."""
    aws.client("autoscaling").set_desired_capacity(
        AutoScalingGroupName=aws.group_name, DesiredCapacity=1
    )
    (host,) = aws.in_service()
    assert handle(SCHEDULE, settings, clients, clock())["done"] == ["open_run"]
    summary = handle(SCHEDULE, settings, clients, clock())
    assert summary["hosts"] == {host: "InService"}
    aws.report_ready(host, clock.advance(60))

    clock.advance(settings.idle_after_disconnect_s)
    summary = handle(SCHEDULE, settings, clients, clock())

    assert "leave" in summary["done"]
    assert summary["desired_capacity"] == 0
    assert aws.in_service() == []


def test_an_event_of_an_instance_outside_the_group_changes_nothing(
    aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    summary = handle(state_change("i-0fedcba9876543210", "stopped"), settings, clients, clock())
    assert summary == {"desired_capacity": 0, "hosts": {}, "sessions": 0, "done": []}


def test_the_reconcile_lambda_reads_its_settings_from_the_environment(
    lambda_environment: dict[str, str], aws: Aws
) -> None:
    """Given the Lambda's SPINUP_ environment (the group's name, no instance id), when the
    schedule fires, then it finds the group's hosts and opens their runs."""
    aws.client("autoscaling").set_desired_capacity(
        AutoScalingGroupName=aws.group_name, DesiredCapacity=MAX_HOSTS
    )

    summary = reconcile_handler.handler(SCHEDULE, None)

    assert summary["hosts"] == {host: "InService" for host in aws.in_service()}
    assert len(summary["hosts"]) == MAX_HOSTS
    assert summary["done"] == ["open_run"] * MAX_HOSTS
    assert summary["desired_capacity"] == MAX_HOSTS
