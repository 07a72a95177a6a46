"""The host record's contract, end to end: what the GPU backend writes through its real
reporter is what the control plane reads through its real store (moto's DynamoDB between)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_host.backend.host_store import HostStore
from gpu_host.backend.reporter import DynamoHostRecord, Reporter
from lambdas.aws.clients import Clients
from lambdas.domain.actions import Transition
from lambdas.domain.host_record import BackendField, HostRecord, Milestone
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
def reporter(aws: Aws, settings: Settings, clock: Clock, host: HostStore) -> Reporter:
    """The backend's reporter, writing to the control plane's table and host record."""
    store = DynamoHostRecord(
        table_name=settings.table_name,
        host_id=settings.host_id,
        region=settings.aws_region,
        endpoint_url=aws.endpoint,
    )
    return Reporter(store, host=host, heartbeat_s=30, clock=clock)


def open_sessions(host: HostStore, count: int) -> None:
    for n in range(count):
        host.admit(session_id=f"s{n}", user=f"user-{n}", models=(), max_per_user=1)


def changed_fields(before: HostRecord, after: HostRecord) -> set[str]:
    return {
        name for name in HostRecord.model_fields if getattr(before, name) != getattr(after, name)
    }


async def test_what_the_backend_writes_the_control_plane_reads(
    reporter: Reporter, clients: Clients, clock: Clock, host: HostStore
) -> None:
    """Given a host record, when the backend reports its milestones, a session count and a
    heartbeat, then the store reads each value back in the field the control plane decides
    on, and nothing else in the record changed."""
    before = clients.store.load_host()
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

    after = clients.store.load_host()

    assert after.backend_up_at == times[Milestone.BACKEND_UP]
    assert after.models_loaded_at == times[Milestone.MODELS_LOADED]
    assert after.ready_at == times[Milestone.READY]
    assert after.last_inference_at == T0 + 10.5
    assert after.connected_sessions == 2
    assert after.generation == before.generation + 1, "a heartbeat is activity"
    assert changed_fields(before, after) == BACKEND_FIELDS


async def test_a_session_count_alone_is_not_activity(
    reporter: Reporter, clients: Clients, host: HostStore
) -> None:
    before = clients.store.load_host()
    open_sessions(host, 3)
    reporter.sessions_changed()
    reporter.start()
    await reporter.stop()

    after = clients.store.load_host()

    assert after.connected_sessions == 3
    assert changed_fields(before, after) == {BackendField.CONNECTED_SESSIONS}


async def test_a_heartbeat_wins_over_a_stop_decided_before_it(
    reporter: Reporter, clients: Clients
) -> None:
    """The generation the backend bumps is the one a stop's conditional write expects."""
    stop = Transition(
        "stop",
        expect={"generation": clients.store.load_host().generation},
        changes={"desired": "stopped"},
    )
    reporter.frame_inferred()
    reporter.start()
    await reporter.stop()

    assert not clients.store.apply(stop)
