"""The host record's contract, end to end: what the GPU backend writes through its real
reporter is what the control plane reads through its real store (moto's DynamoDB between)."""

from __future__ import annotations

import pytest

from gpu_host.backend.reporter import DynamoHostRecord, Reporter
from lambdas.aws.clients import Clients
from lambdas.domain.actions import Transition
from lambdas.domain.host_record import BackendField, HostRecord, Milestone
from lambdas.settings import Settings
from tests.integration.control.harness import T0, Aws, Clock

BACKEND_FIELDS = {*Milestone, *BackendField}


@pytest.fixture
def reporter(aws: Aws, settings: Settings, clock: Clock) -> Reporter:
    """The backend's reporter, writing to the control plane's table and host record."""
    store = DynamoHostRecord(
        table_name=settings.table_name,
        host_id=settings.host_id,
        region=settings.aws_region,
        endpoint_url=aws.endpoint,
    )
    return Reporter(store, heartbeat_s=30, clock=clock)


def changed_fields(before: HostRecord, after: HostRecord) -> set[str]:
    return {
        name for name in HostRecord.model_fields if getattr(before, name) != getattr(after, name)
    }


async def test_what_the_backend_writes_the_control_plane_reads(
    reporter: Reporter, clients: Clients, clock: Clock
) -> None:
    """Given a host record, when the backend reports its milestones, a session count and a
    heartbeat, then the store reads each value back in the field the control plane decides
    on, and nothing else in the record changed."""
    before = clients.store.load_host()
    times = {}
    for step, milestone in enumerate(Milestone, start=1):
        clock.now = times[milestone] = T0 + step + 0.125  # milliseconds survive the trip
        reporter.milestone(milestone)
    reporter.sessions_changed(2)
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


async def test_a_session_count_alone_is_not_activity(reporter: Reporter, clients: Clients) -> None:
    before = clients.store.load_host()
    reporter.sessions_changed(3)
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
