"""Host-record reporting to DynamoDB, against moto's server."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import websockets
from moto.server import ThreadedMotoServer

from gpu_host.backend.app import REPORT_REQUESTED_LOG
from gpu_host.backend.host_store import HostStore
from gpu_host.backend.reporter import REPORT_SIGNAL, DynamoHostRecord, Reporter
from gpu_host.triton.local import LocalTriton
from infra.local.ports import free_port
from lambdas.domain.host_record import (
    PARTITION_KEY,
    BackendField,
    BackendUpdate,
    HostRecord,
    Milestone,
    host_key,
)
from tests.integration.gpu_host.conftest import BackendProcessFactory
from tests.integration.gpu_host.dataplane_support import (
    BackendFactory,
    TextImage,
    TokenIssuer,
    frame,
    recv_json,
    say_hello,
)
from tests.integration.gpu_host.process_support import BackendProcess
from tests.support.waiting import eventually, eventually_async

REGION = "us-east-1"
CONNECTED = BackendField.CONNECTED_SESSIONS


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


@pytest.fixture
def table(moto_endpoint: str) -> Any:
    dynamodb = boto3.resource("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    created = dynamodb.create_table(
        TableName=f"spinup-{uuid.uuid4().hex[:8]}",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return created


@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostStore]:
    """This worker's connection to the host store (the session count comes from it)."""
    store = HostStore.open(tmp_path / "state")
    yield store
    store.close()


def open_sessions(host: HostStore, count: int) -> None:
    for n in range(count):
        host.admit(session_id=f"s{n}", user=f"user-{n}", models=(), max_per_user=1)


def host_record(table: Any, host_id: str = "gpu-0") -> dict[str, Any]:
    key = {PARTITION_KEY: host_key(host_id)}
    item: dict[str, Any] = table.get_item(Key=key, ConsistentRead=True).get("Item", {})
    return item


async def host_record_where(table: Any, what: str, holds: Callable[[dict[str, Any]], bool]) -> None:
    """Wait until the host record satisfies `holds` (the reporter writes in the background)."""
    await eventually_async(lambda: host_record(table), holds, what=f"host record: {what}")


def store_for(table: Any, endpoint: str) -> DynamoHostRecord:
    return DynamoHostRecord(
        table_name=table.name, host_id="gpu-0", region=REGION, endpoint_url=endpoint
    )


@pytest.mark.triton
async def test_backend_reports_its_life_to_the_host_record(
    start_backend: BackendFactory,
    triton: LocalTriton,
    token_issuer: TokenIssuer,
    text_image: TextImage,
    table: Any,
    moto_endpoint: str,
) -> None:
    """Given a host record, the backend writes its milestones in order, the session count
    when it changes, and one heartbeat (generation + 1) for a burst of inferred frames."""
    table.put_item(Item={PARTITION_KEY: host_key("gpu-0"), "generation": 5, "desired": "running"})
    started = time.time()
    running = start_backend(
        triton_url=triton.http_url,
        table_name=table.name,
        aws_endpoint_url=moto_endpoint,
        aws_region=REGION,
    )
    await host_record_where(table, "ready_at", lambda r: Milestone.READY in r)
    record = host_record(table)
    assert started <= record[Milestone.BACKEND_UP] <= record[Milestone.MODELS_LOADED]
    assert record[Milestone.MODELS_LOADED] <= record[Milestone.READY]
    assert record[BackendField.GENERATION] == 5, "readiness is not activity"
    await host_record_where(
        table, "models_loaded", lambda r: r.get(BackendField.MODELS_LOADED) == ["text"]
    )
    loaded = HostRecord.model_validate({**host_record(table), "host_id": "gpu-0"})
    assert loaded.models_loaded == ("text",)

    async with websockets.connect(running.ws_url) as ws:
        await say_hello(ws, token_issuer.token("ann"))
        await host_record_where(
            table, "1 session", lambda r: r.get(BackendField.CONNECTED_SESSIONS) == 1
        )
        assert host_record(table)[BackendField.GENERATION] == 5, "a connection is not activity"
        for frame_id in (1, 2, 3):
            await ws.send(frame(frame_id, text_image.jpeg))
            assert (await recv_json(ws))["type"] == "result"
        await host_record_where(
            table, "last_inference_at", lambda r: BackendField.LAST_INFERENCE_AT in r
        )
    await host_record_where(
        table, "0 sessions", lambda r: r.get(BackendField.CONNECTED_SESSIONS) == 0
    )
    record = host_record(table)
    assert record[BackendField.GENERATION] == 6, "three frames within 30 s: one heartbeat"
    assert record[BackendField.LAST_INFERENCE_AT] >= record[Milestone.READY]
    assert record["desired"] == "running", "attributes the backend does not own are untouched"


async def test_heartbeats_at_most_every_period(
    table: Any, moto_endpoint: str, host: HostStore
) -> None:
    table.put_item(Item={PARTITION_KEY: host_key("gpu-0"), "generation": 0})
    clock = Clock()
    reporter = Reporter(store_for(table, moto_endpoint), host=host, heartbeat_s=30, clock=clock)
    reporter.start()
    open_sessions(host, 2)
    reporter.sessions_changed()
    for step in (0, 10, 29.9):
        clock.now = 1_800_000_000.0 + step
        reporter.frame_inferred()
    await host_record_where(table, "generation 1", lambda r: r.get(BackendField.GENERATION) == 1)
    clock.now = 1_800_000_030.0
    reporter.frame_inferred()
    await reporter.stop()
    record = host_record(table)
    assert record[BackendField.GENERATION] == 2
    assert record[BackendField.LAST_INFERENCE_AT] == Decimal("1800000030.000")
    assert record[BackendField.CONNECTED_SESSIONS] == 2


async def test_workers_report_the_host_once(
    table: Any, moto_endpoint: str, host: HostStore
) -> None:
    """Two workers' reporters sharing the host store: each milestone is written once (the
    first worker's time), one heartbeat per period for frames on both, and the session
    count is the host's."""
    table.put_item(Item={PARTITION_KEY: host_key("gpu-0"), "generation": 0})
    clock = Clock()
    other = HostStore(host.path, pid=os.getppid())  # another live worker's connection
    reporters = [
        Reporter(store_for(table, moto_endpoint), host=store, heartbeat_s=30, clock=clock)
        for store in (host, other)
    ]
    first_ready = clock.now
    for reporter in reporters:
        reporter.milestone(Milestone.READY)
        clock.now += 1
    host.admit(session_id="a", user="ann", models=(), max_per_user=2)
    other.admit(session_id="b", user="bob", models=(), max_per_user=2)
    for reporter in reporters:
        reporter.sessions_changed()
        reporter.frame_inferred()
        clock.now += 1
    for reporter in reporters:
        reporter.start()
        await reporter.stop()
    other.close()
    record = host_record(table)
    assert record[Milestone.READY] == Decimal(f"{first_ready:.3f}")
    assert record[BackendField.GENERATION] == 1, "frames on two workers within 30 s: one"
    assert record[BackendField.CONNECTED_SESSIONS] == 2


async def test_frames_on_another_worker_heartbeat_when_the_hosts_period_ends(
    table: Any, moto_endpoint: str, host: HostStore
) -> None:
    """Worker A sent the heartbeat at t; worker B, inferring from t + 29.9, sends the next at
    t + 30 — the host's period, not a period after its own first try."""
    table.put_item(Item={PARTITION_KEY: host_key("gpu-0"), "generation": 0})
    clock = Clock()
    start = clock.now
    other = HostStore(host.path, pid=os.getppid())
    a, b = (
        Reporter(store_for(table, moto_endpoint), host=store, heartbeat_s=30, clock=clock)
        for store in (host, other)
    )
    for reporter, at in ((a, start), (b, start + 29.9), (b, start + 30)):
        clock.now = at
        reporter.start()
        reporter.frame_inferred()
        await reporter.stop()  # flushes: the heartbeat is sent, or found not due
    other.close()
    record = host_record(table)
    assert record[BackendField.GENERATION] == 2
    assert record[BackendField.LAST_INFERENCE_AT] == Decimal(f"{start + 30:.3f}")


async def test_a_stale_count_written_last_is_corrected(
    table: Any, moto_endpoint: str, host: HostStore
) -> None:
    """A worker that wrote a count which changed meanwhile writes again: the record ends with
    the host's count, whichever worker's write lands last."""
    table.put_item(Item={PARTITION_KEY: host_key("gpu-0"), "generation": 0})

    class LateRecord(DynamoHostRecord):
        """Lets another session open right after each write, as another worker would."""

        def apply(self, update: BackendUpdate) -> None:
            super().apply(update)
            if host.session_count() < 2:
                host.admit(session_id="late", user="bob", models=(), max_per_user=2)

    record_store = LateRecord(
        table_name=table.name, host_id="gpu-0", region=REGION, endpoint_url=moto_endpoint
    )
    reporter = Reporter(record_store, host=host)
    reporter.start()
    host.admit(session_id="a", user="ann", models=(), max_per_user=2)
    reporter.sessions_changed()
    await host_record_where(
        table, "2 sessions", lambda r: r.get(BackendField.CONNECTED_SESSIONS) == 2
    )
    await reporter.stop()


@pytest.mark.triton
async def test_a_two_worker_backend_reports_the_hosts_sessions(
    start_backend_process: BackendProcessFactory,
    table: Any,
    moto_endpoint: str,
    text_image: TextImage,
) -> None:
    """Sessions on both workers of `python -m gpu_host.backend`: the record's
    connected_sessions is their total, frames on either worker make a heartbeat, and the
    count is 0 once they closed."""
    table.put_item(Item={PARTITION_KEY: host_key("gpu-0"), "generation": 5})
    backend = start_backend_process(
        workers=2,
        SPINUP_TABLE_NAME=table.name,
        SPINUP_AWS_ENDPOINT_URL=moto_endpoint,
        SPINUP_AWS_REGION=REGION,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    await host_record_where(table, "ready_at", lambda r: Milestone.READY in r)
    clients = [await backend.session(worker) for worker in sorted(backend.worker_pids())]
    await host_record_where(
        table, "2 sessions", lambda r: r.get(BackendField.CONNECTED_SESSIONS) == 2
    )
    await clients[-1].send(frame(1, text_image.jpeg))
    assert (await recv_json(clients[-1]))["type"] == "result"
    await host_record_where(
        table,
        "a heartbeat with both sessions",
        lambda r: BackendField.LAST_INFERENCE_AT in r and r[BackendField.GENERATION] == 6,
    )
    assert host_record(table)[BackendField.CONNECTED_SESSIONS] == 2
    for ws in clients:
        await ws.close()
    await host_record_where(
        table, "0 sessions", lambda r: r.get(BackendField.CONNECTED_SESSIONS) == 0
    )


async def test_never_creates_a_host_record(table: Any, moto_endpoint: str, host: HostStore) -> None:
    reporter = Reporter(store_for(table, moto_endpoint), host=host)
    reporter.start()
    reporter.milestone(Milestone.BACKEND_UP)
    reporter.sessions_changed()
    reporter.frame_inferred()
    await reporter.stop()
    assert table.scan()["Items"] == []


async def test_dynamodb_outage_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, host: HostStore
) -> None:
    store = DynamoHostRecord(
        table_name="t",
        host_id="gpu-0",
        region=REGION,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
    )
    reporter = Reporter(store, host=host)
    reporter.start()
    reporter.milestone(Milestone.READY)
    await reporter.stop()
    assert "host record update failed" in caplog.text


def test_disabled_reporter_does_nothing(host: HostStore) -> None:
    reporter = Reporter(None, host=host)
    reporter.start()  # outside an event loop: starting a task would raise
    reporter.milestone(Milestone.READY)
    reporter.sessions_changed()
    reporter.frame_inferred()
    asyncio.run(reporter.stop())


@pytest.fixture
def two_reporting_workers(
    start_backend_process: BackendProcessFactory, table: Any, moto_endpoint: str
) -> BackendProcess:
    table.put_item(Item={PARTITION_KEY: host_key("gpu-0"), "generation": 5})
    return start_backend_process(
        workers=2,
        SPINUP_TABLE_NAME=table.name,
        SPINUP_AWS_ENDPOINT_URL=moto_endpoint,
        SPINUP_AWS_REGION=REGION,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )


@pytest.mark.triton
async def test_a_killed_workers_sessions_leave_the_record_at_once(
    two_reporting_workers: BackendProcess, table: Any
) -> None:
    """A worker SIGKILLed with two sessions: the supervisor removes them from the host store
    and asks the surviving worker to write the host's count — not the replacement, once
    started, nor the next heartbeat."""
    backend = two_reporting_workers
    victim, survivor = sorted(backend.worker_pids())
    clients = [await backend.session(victim) for _ in range(2)]
    clients.append(await backend.session(survivor))
    await host_record_where(table, "3 sessions", lambda r: r.get(CONNECTED) == 3)

    backend.worker_signal(victim, signal.SIGKILL)
    await host_record_where(table, "the survivor's 1 session", lambda r: r.get(CONNECTED) == 1)
    eventually(
        backend.log,
        lambda log: f"[{survivor}] gpu_host.backend.app: {REPORT_REQUESTED_LOG}" in log,
        what="the survivor asked to report",
    )
    for ws in clients:
        await ws.close()


@pytest.mark.triton
async def test_a_worker_asked_for_the_count_writes_the_hosts(
    two_reporting_workers: BackendProcess, table: Any
) -> None:
    """REPORT_SIGNAL makes a worker write the host's count, whatever the record says."""
    backend = two_reporting_workers
    worker = min(backend.worker_pids())
    client = await backend.session(worker)
    await host_record_where(table, "1 session", lambda r: r.get(CONNECTED) == 1)
    table.update_item(
        Key={PARTITION_KEY: host_key("gpu-0")},
        UpdateExpression="SET #c = :stale",
        ExpressionAttributeNames={"#c": CONNECTED},
        ExpressionAttributeValues={":stale": 99},
    )
    backend.worker_signal(worker, REPORT_SIGNAL)
    await host_record_where(table, "1 session again", lambda r: r.get(CONNECTED) == 1)
    assert backend.worker_pids() == backend.wait_workers(2), "the signal ended a worker"
    await client.close()
