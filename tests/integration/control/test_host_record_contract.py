"""The host record's contract, end to end: what the GPU backend writes through its real
reporter is what the control plane reads through its real store (moto's DynamoDB between)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_host.backend.host_store import HostStore
from gpu_host.backend.reporter import DynamoHostRecord, Reporter
from lambdas.aws.clients import Clients
from lambdas.domain.actions import Transition, Update, fields
from lambdas.domain.host_record import BackendField, HostRecord, Milestone, host_key
from lambdas.reconcile.service import reconcile_once
from lambdas.settings import Settings
from tests.integration.control.harness import T0, Aws, Clock

BACKEND_FIELDS = {*Milestone, *BackendField}


@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostStore]:
    """The host store the backend's workers share (the session count comes from it)."""
    store = HostStore.open(tmp_path)
    yield store
    store.close()


@pytest.fixture
def host_id(aws: Aws, settings: Settings, clients: Clients, clock: Clock) -> str:
    """An instance the group put in service, with the record reconcile made for it (keyed by
    its instance id: what the host reads from its instance metadata)."""
    clients.fleet.set_desired_capacity(1)
    reconcile_once(settings, clients, clock())
    (instance_id,) = aws.in_service()
    assert clients.store.load_host(instance_id) is not None
    return instance_id


@pytest.fixture
def reporter(aws: Aws, settings: Settings, clock: Clock, host: HostStore, host_id: str) -> Reporter:
    """The backend's reporter, writing to the control plane's table and host record."""
    store = DynamoHostRecord(
        table_name=settings.table_name,
        host_id=host_id,
        region=settings.aws_region,
        endpoint_url=aws.endpoint,
    )
    return Reporter(store, host=host, heartbeat_s=30, clock=clock)


def load(clients: Clients, host_id: str) -> HostRecord:
    record = clients.store.load_host(host_id)
    assert record is not None
    return record


def open_sessions(host: HostStore, count: int) -> None:
    for n in range(count):
        host.admit(session_id=f"s{n}", user=f"user-{n}", models=(), max_per_user=1)


def changed_fields(before: HostRecord, after: HostRecord) -> set[str]:
    return {
        name for name in HostRecord.model_fields if getattr(before, name) != getattr(after, name)
    }


async def test_what_the_backend_writes_the_control_plane_reads(
    reporter: Reporter, clients: Clients, clock: Clock, host: HostStore, host_id: str
) -> None:
    """Given a host record, when the backend reports its milestones, a session count and a
    heartbeat, then the store reads each value back in the field the control plane decides
    on, and nothing else in the record changed."""
    before = load(clients, host_id)
    times = {}
    for step, milestone in enumerate(Milestone, start=1):
        clock.now = times[milestone] = T0 + step + 0.125  # milliseconds survive the trip
        reporter.milestone(milestone)
    open_sessions(host, 2)
    reporter.sessions_changed()
    clock.now = T0 + 10.5
    reporter.frame_inferred()
    reporter.start()
    await reporter.stop()  # flushes everything pending

    after = load(clients, host_id)

    assert after.backend_up_at == times[Milestone.BACKEND_UP]
    assert after.models_loaded_at == times[Milestone.MODELS_LOADED]
    assert after.ready_at == times[Milestone.READY]
    assert after.last_inference_at == T0 + 10.5
    assert after.connected_sessions == 2
    assert after.generation == before.generation + 1, "a heartbeat is activity"
    assert changed_fields(before, after) == BACKEND_FIELDS


async def test_a_session_count_alone_is_not_activity(
    reporter: Reporter, clients: Clients, host: HostStore, host_id: str
) -> None:
    before = load(clients, host_id)
    open_sessions(host, 3)
    reporter.sessions_changed()
    reporter.start()
    await reporter.stop()

    after = load(clients, host_id)

    assert after.connected_sessions == 3
    assert changed_fields(before, after) == {BackendField.CONNECTED_SESSIONS}


async def test_a_heartbeat_wins_over_a_leave_decided_before_it(
    reporter: Reporter, clients: Clients, host_id: str
) -> None:
    """The generation the backend bumps is the one a leave's conditional write expects."""
    before = load(clients, host_id)
    leave = Transition(
        "leave",
        (
            Update(
                key=host_key(host_id),
                expect={"generation": before.generation, "run_seq": before.run_seq},
                set=fields({"run_open": False, "stop_pending": True}),
            ),
        ),
    )
    reporter.frame_inferred()
    reporter.start()
    await reporter.stop()

    assert not clients.store.apply(leave)
    assert load(clients, host_id).run_open
