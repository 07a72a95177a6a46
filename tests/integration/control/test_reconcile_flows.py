"""Reconcile against moto: queued starts, capacity fallback, the stop lock, the Lambda handler."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from lambdas.aws.clients import Clients
from lambdas.aws.ec2 import Ec2Gateway
from lambdas.control.app import create_app
from lambdas.domain.decide import decide
from lambdas.domain.host_record import Milestone, heartbeat_update, milestone_update
from lambdas.reconcile import handler as reconcile_handler
from lambdas.reconcile.handler import STATE_CHANGE, handle
from lambdas.reconcile.service import execute, read_snapshot, reconcile_once
from lambdas.settings import Settings
from tests.integration.control.harness import Aws, Clock, Issuer


def state_change(instance_id: str, state: str) -> dict[str, Any]:
    return {
        "source": "aws.ec2",
        "detail-type": STATE_CHANGE,
        "detail": {"instance-id": instance_id, "state": state},
    }


SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


class NoCapacityFor(Ec2Gateway):
    """Fault injection: EC2 has no capacity for the listed types (the rest is moto)."""

    def __init__(self, gateway: Ec2Gateway, *short: str) -> None:
        super().__init__(gateway.client, gateway.instance_id)
        self.short = set(short)

    def start(self) -> None:
        instance = self.describe()
        if instance is not None and instance.instance_type in self.short:
            raise ClientError(
                {
                    "Error": {
                        "Code": "InsufficientInstanceCapacity",
                        "Message": f"We currently do not have sufficient {instance.instance_type}"
                        " capacity in the Availability Zone you requested (us-east-1a).",
                    }
                },
                "StartInstances",
            )
        super().start()


def short_of(clients: Clients, *types: str) -> Clients:
    return Clients(ec2=NoCapacityFor(clients.ec2, *types), store=clients.store)


async def api_for(settings: Settings, clients: Clients, clock: Clock) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(settings, clients=clients, clock=clock))
    return httpx.AsyncClient(transport=transport, base_url="http://spinup.test")


async def test_a_start_while_stopping_runs_once_stopped(
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    settings: Settings,
    clients: Clients,
    clock: Clock,
    start_calls: list[dict[str, Any]],
) -> None:
    """Given an instance that is stopping, when a user presses Start, then the start is
    queued; when EC2 reports `stopped`, the state-change event starts it again."""
    aws.force_state("stopping")

    created = await api.post("/api/sessions", headers=issuer.headers())

    assert created.status_code == 202
    assert created.json()["phase"] == "stopping"
    status = (await api.get("/api/status", headers=issuer.headers())).json()
    assert "begins as soon as it has stopped" in status["message"]
    assert start_calls == []

    aws.force_state("stopped")
    summary = handle(state_change(aws.instance_id, "stopped"), settings, clients, clock())

    assert summary["done"][:2] == ["claim_start", "start_instance"]
    assert aws.ec2_state() == "running"
    assert len(start_calls) == 1


async def test_no_capacity_falls_back_to_the_next_type_and_says_so(
    issuer: Issuer, aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    async with await api_for(settings, short_of(clients, "g5.xlarge"), clock) as api:
        created = await api.post("/api/sessions", headers=issuer.headers())
        status = (await api.get("/api/status", headers=issuer.headers())).json()

    assert created.status_code == 202
    assert aws.ec2_state() == "running"
    assert aws.describe()["InstanceType"] == "g6.xlarge"
    assert "g5.xlarge: no capacity (InsufficientInstanceCapacity)" in status["message"]
    assert "Running as g6.xlarge" in status["message"]
    assert aws.host().instance_type == "g6.xlarge"


async def test_the_next_start_tries_the_preferred_type_again(
    issuer: Issuer, aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    ec2 = aws.client("ec2")
    ec2.modify_instance_attribute(InstanceId=aws.instance_id, InstanceType={"Value": "g6.xlarge"})
    async with await api_for(settings, clients, clock) as api:
        await api.post("/api/sessions", headers=issuer.headers())
    assert aws.describe()["InstanceType"] == "g5.xlarge"


async def test_no_capacity_anywhere_is_an_error_with_nothing_half_started(
    issuer: Issuer, aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    faulty = short_of(clients, *settings.instance_types)
    async with await api_for(settings, faulty, clock) as api:
        created = await api.post("/api/sessions", headers=issuer.headers())
        status = (await api.get("/api/status", headers=issuer.headers())).json()

    assert created.status_code == 202
    assert created.json()["phase"] == "error"
    assert status["phase"] == "error"
    for kind in settings.instance_types:
        assert f"{kind}: no capacity" in status["message"]
    assert "Try again in a few minutes" in status["message"]
    assert status["sessions"] == []
    assert aws.ec2_state() == "stopped"
    host = aws.host()
    assert (host.desired, host.run_open) == ("stopped", False)


async def test_after_an_error_a_new_start_tries_again(
    issuer: Issuer, aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    faulty = short_of(clients, *settings.instance_types)
    async with await api_for(settings, faulty, clock) as api:
        await api.post("/api/sessions", headers=issuer.headers())
    async with await api_for(settings, clients, clock) as api:
        created = await api.post("/api/sessions", headers=issuer.headers())
    assert created.json()["phase"] == "booting"
    assert aws.host().error is None


async def test_a_heartbeat_racing_a_stop_wins(
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    settings: Settings,
    clients: Clients,
    clock: Clock,
) -> None:
    """Given an idle instance whose stop was just decided, when the backend reports frames
    before the stop is made, then the stop is abandoned and the instance keeps running."""
    await api.post("/api/sessions", headers=issuer.headers())
    aws.report(milestone_update(Milestone.READY, clock.advance(120)))
    clock.advance(400)
    snapshot = read_snapshot(clients)
    actions = decide(snapshot, settings, clock())
    assert [action.name for action in actions] == ["record_cold_start", "stop"]

    aws.report(heartbeat_update(clock(), sessions=1))
    done = execute(tuple(actions), snapshot, settings, clients)

    assert done == ["record_cold_start"]
    assert aws.ec2_state() == "running"
    assert aws.host().desired == "running"
    status = (await api.get("/api/status", headers=issuer.headers())).json()
    assert status["phase"] == "ready"


async def test_without_a_race_the_same_stop_goes_through(
    api: httpx.AsyncClient,
    issuer: Issuer,
    aws: Aws,
    settings: Settings,
    clients: Clients,
    clock: Clock,
) -> None:
    await api.post("/api/sessions", headers=issuer.headers())
    aws.report(milestone_update(Milestone.READY, clock.advance(120)))
    clock.advance(400)

    result = reconcile_once(settings, clients, clock())

    assert result.done == ("record_cold_start", "stop", "stop_instance")
    assert aws.ec2_state() == "stopped"
    assert aws.host().cold_starts == (120.0,)


def test_the_schedule_stops_an_idle_instance(
    aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    ec2 = aws.client("ec2")
    ec2.start_instances(InstanceIds=[aws.instance_id])
    assert handle(SCHEDULE, settings, clients, clock())["done"] == ["adopt_run"]
    aws.report(milestone_update(Milestone.READY, clock.advance(60)))

    clock.advance(settings.idle_after_disconnect_s)
    summary = handle(SCHEDULE, settings, clients, clock())

    assert summary["done"] == ["stop", "stop_instance"]
    assert summary["phase"] == "stopped"
    assert aws.ec2_state() == "stopped"


def test_a_state_change_of_another_instance_is_ignored(
    aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    summary = handle(state_change("i-0fedcba9876543210", "stopped"), settings, clients, clock())
    assert summary == {"ignored": "i-0fedcba9876543210"}


@pytest.mark.parametrize(("state", "phase"), [("pending", "starting"), ("stopping", "stopping")])
def test_intermediate_states_wait_for_their_event(
    state: str, phase: str, aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    aws.force_state(state)
    summary = handle(state_change(aws.instance_id, state), settings, clients, clock())
    assert summary["phase"] == phase
    assert aws.ec2_state() == state


def test_the_host_record_is_created_on_first_use(
    aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    aws.delete_host()
    assert handle(SCHEDULE, settings, clients, clock())["phase"] == "stopped"
    assert aws.host().instance_id == aws.instance_id


class StopDenied(Ec2Gateway):
    """Fault injection: StopInstances is refused (say, a missing IAM permission)."""

    def stop(self) -> None:
        raise ClientError(
            {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}},
            "StopInstances",
        )


async def test_a_failed_stop_is_finished_by_a_later_reconcile(
    issuer: Issuer, aws: Aws, settings: Settings, clients: Clients, clock: Clock
) -> None:
    """Given an idle instance, when StopInstances fails during a status poll, then the poll
    still answers (the stop is written, so: stopping), and the next reconcile that can stop
    the instance does."""
    denied = Clients(
        ec2=StopDenied(clients.ec2.client, clients.ec2.instance_id), store=clients.store
    )
    async with await api_for(settings, denied, clock) as api:
        await api.post("/api/sessions", headers=issuer.headers())
        aws.report(milestone_update(Milestone.READY, clock.advance(120)))
        clock.advance(301)
        answer = await api.get("/api/status", headers=issuer.headers())

    assert answer.status_code == 200
    assert answer.json()["phase"] == "stopping"
    assert aws.ec2_state() == "running"

    summary = handle(SCHEDULE, settings, clients, clock.advance(60))

    assert summary["done"] == ["retry_stop"]
    assert aws.ec2_state() == "stopped"


def test_the_lambda_handler_reads_its_settings_from_the_environment(
    aws: Aws, settings: Settings, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SPINUP_TABLE_NAME": settings.table_name,
        "SPINUP_INSTANCE_ID": settings.instance_id,
        "SPINUP_AWS_ENDPOINT_URL": aws.endpoint,
        "SPINUP_AUTH_MODE": "apigw",
    }.items():
        monkeypatch.setenv(name, value)
    reconcile_handler._runtime.cache_clear()
    try:
        summary = reconcile_handler.handler(SCHEDULE, None)
    finally:
        reconcile_handler._runtime.cache_clear()
    assert summary["phase"] == "stopped"
