"""Worker processes: `python -m gpu_host.backend` with two workers on one port, on the real
Triton. Both serve sessions; what must hold across them does (the per-user limit, a
ticket's single use, the metrics' totals); and the supervisor drains them all on SIGTERM,
replaces a worker killed outright, and lets a worker sent SIGTERM alone close its sockets
politely before it replaces it too."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from gpu_host.backend.host_store import pid_alive
from gpu_host.backend.supervisor import STATE_DIR_PREFIX
from gpu_host.backend.triton_shm import NAME_PREFIX, SHM_DIR
from gpu_host.backend.ws import SHUTDOWN_NOTICE
from gpu_host.triton.local import LocalTriton
from tests.integration.gpu_host.conftest import BackendProcessFactory
from tests.integration.gpu_host.dataplane_support import (
    TextImage,
    TokenIssuer,
    closed_with,
    frame,
    recv_json,
    unique_user,
)
from tests.integration.gpu_host.process_support import (
    BackendProcess,
    fresh_ticket,
    worker_of,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.triton

WORKERS = 2
MAX_PER_USER = 2


@pytest.fixture(scope="module")
def backend(
    token_issuer: TokenIssuer, triton: LocalTriton, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackendProcess]:
    """One two-worker backend for the tests that leave it as they found it."""
    running = BackendProcess(
        token_issuer,
        tmp_path_factory.mktemp("workers") / "backend.log",
        SPINUP_TRITON_URL=triton.http_url,
        SPINUP_WORKERS=str(WORKERS),
        SPINUP_MAX_SESSIONS_PER_USER=str(MAX_PER_USER),
    ).start()
    running.wait_ready(WORKERS)
    yield running
    assert running.stop() == 0


async def infer(ws: websockets.ClientConnection, jpeg: bytes, frame_id: int = 1) -> None:
    await ws.send(frame(frame_id, jpeg))
    result = await recv_json(ws)
    assert (result["type"], result["frame_id"]) == ("result", frame_id), result


async def hello_refused(backend: BackendProcess, worker: int, ticket: str) -> tuple[int, str]:
    """Hello with `ticket` on `worker`; the close code and reason of the refusal."""
    async with await backend.connect(worker) as ws:
        await ws.send(json.dumps({"type": "hello", "ticket": ticket}))
        code, reason = await closed_with(ws)
    assert code is not None
    return code, reason


def frames_inferred(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "spinup_frames_inferred_total"
    )


def shared_memory_of(pid: int) -> list[Path]:
    """The worker's shared-memory objects (`triton_shm`)."""
    return list(SHM_DIR.glob(f"{NAME_PREFIX}{pid}-*"))


def gauge(text: str, name: str) -> float:
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
    assert len(values) == 1, (name, values)
    return values[0]


async def test_both_workers_serve_sessions(backend: BackendProcess, text_image: TextImage) -> None:
    workers = backend.worker_pids()
    assert len(workers) == WORKERS
    for worker in workers:
        async with await backend.session(worker) as ws:
            assert worker_of(ws) == worker
            await infer(ws, text_image.jpeg)


async def test_the_per_user_limit_holds_across_workers(backend: BackendProcess) -> None:
    """Given a user's sessions spread over both workers, a third hello is refused with 4429
    on either worker; once one closes, a new one is admitted."""
    first, second = sorted(backend.worker_pids())
    user = unique_user()
    on_first = await backend.session(first, user)
    on_second = await backend.session(second, user)
    for worker in (first, second):
        code, reason = await hello_refused(backend, worker, fresh_ticket(user))
        assert code == 4429, reason
    await on_first.close()
    eventually(lambda: backend.get("/health/ready")[2]["sessions"] == 1, what="one session left")
    again = await backend.session(second, user)
    for ws in (on_second, again):
        await ws.close()


async def test_a_ticket_replayed_to_the_other_worker_is_refused(
    backend: BackendProcess,
) -> None:
    first, second = sorted(backend.worker_pids())
    ticket = fresh_ticket(unique_user())
    async with await backend.connect(first) as ws:
        await ws.send(json.dumps({"type": "hello", "ticket": ticket}))
        assert (await recv_json(ws))["type"] == "ready"
        code, reason = await hello_refused(backend, second, ticket)
    assert (code, reason) == (4401, "ticket already used: ask for a fresh one")


async def test_metrics_add_up_whichever_worker_answers(
    backend: BackendProcess, text_image: TextImage
) -> None:
    """Frames inferred on both workers appear in one scrape's total, and so do the open
    sessions, whichever worker answers the scrape."""
    before = frames_inferred(backend.get("/metrics")[2])
    first, second = sorted(backend.worker_pids())
    on_first = await backend.session(first)
    on_second = await backend.session(second)
    for frame_id in (1, 2, 3):
        await infer(on_first, text_image.jpeg, frame_id)
    for frame_id in (1, 2):
        await infer(on_second, text_image.jpeg, frame_id)
    answered: dict[int, str] = {}

    def scrape() -> set[int]:
        _, worker, text = backend.get("/metrics")
        answered[worker] = text
        return set(answered)

    eventually(scrape, lambda workers: workers == {first, second}, what="both workers scraped")
    for worker, text in answered.items():
        assert frames_inferred(text) - before == 5, f"worker {worker}'s scrape"
        assert gauge(text, "spinup_active_sessions") == 2, f"worker {worker}'s scrape"
    for ws in (on_first, on_second):
        await ws.close()


async def test_sigterm_to_the_supervisor_drains_every_worker(
    start_backend_process: BackendProcessFactory,
) -> None:
    """Every client, whichever worker holds it, gets the shutdown notice and then 1001; the
    supervisor exits 0 and no worker is left."""
    backend = start_backend_process(workers=WORKERS)
    workers = backend.worker_pids()
    clients = [await backend.session(worker) for worker in sorted(workers)]
    backend.signal_supervisor(signal.SIGTERM)
    for ws in clients:
        notice = await recv_json(ws)
        assert notice == {"type": "notice", "kind": "shutdown", "message": SHUTDOWN_NOTICE}
        assert (await closed_with(ws))[0] == 1001
    assert backend.stop() == 0
    assert not any(pid_alive(pid) for pid in workers), "a worker outlived the supervisor"


async def test_a_killed_worker_is_replaced_and_its_sessions_forgotten(
    start_backend_process: BackendProcessFactory, text_image: TextImage, tmp_path: Path
) -> None:
    """A worker SIGKILLed holds a user's every allowed session: its clients see 1006, the
    other worker's client is still served, a new worker takes its place, and the user's
    engine reconnects with fresh tickets — the dead worker's sessions no longer count, its
    frames still do in the metrics, and neither its metric files nor its shared memory stay."""
    state = tmp_path / "state"
    backend = start_backend_process(
        workers=WORKERS,
        SPINUP_MAX_SESSIONS_PER_USER=str(MAX_PER_USER),
        SPINUP_STATE_DIR=str(state),
    )
    victim, survivor = sorted(backend.worker_pids())
    user = unique_user()
    doomed = [await backend.session(victim, user) for _ in range(MAX_PER_USER)]
    bystander = await backend.session(survivor)
    before = frames_inferred(backend.get("/metrics")[2])
    await infer(doomed[0], text_image.jpeg)
    assert shared_memory_of(victim), "its inputs went to Triton through shared memory"

    backend.worker_signal(victim, signal.SIGKILL)
    for ws in doomed:
        assert (await closed_with(ws))[0] is None, "no close frame: 1006 for the client"
        assert ws.close_code == 1006
    await infer(bystander, text_image.jpeg)

    (replacement,) = backend.wait_workers(WORKERS, without=frozenset({victim})) - {survivor}
    backend.wait_ready(WORKERS)
    # The dead worker's frame still counts, from the archive; its own files are gone.
    assert frames_inferred(backend.get("/metrics")[2]) - before == 2
    metric_files = {path.name for path in (state / "metrics").iterdir()}
    assert not {name for name in metric_files if name.endswith(f"_{victim}.db")}, metric_files
    assert "counter_archive.db" in metric_files
    assert shared_memory_of(victim) == []
    again = [await backend.session(worker, user) for worker in (replacement, survivor)]
    await infer(again[0], text_image.jpeg)
    for ws in (*again, bystander):
        await ws.close()


async def test_sigterm_to_one_worker_closes_its_sockets_politely_and_it_is_replaced(
    start_backend_process: BackendProcessFactory, text_image: TextImage
) -> None:
    backend = start_backend_process(workers=WORKERS)
    leaving, staying = sorted(backend.worker_pids())
    client = await backend.session(leaving)
    bystander = await backend.session(staying)

    backend.worker_signal(leaving, signal.SIGTERM)
    notice = await recv_json(client)
    assert (notice["type"], notice["kind"]) == ("notice", "shutdown")
    assert (await closed_with(client))[0] == 1001
    await infer(bystander, text_image.jpeg)

    (replacement,) = backend.wait_workers(WORKERS, without=frozenset({leaving})) - {staying}
    async with await backend.session(replacement) as ws:
        await infer(ws, text_image.jpeg)
    await bystander.close()


async def test_a_killed_supervisors_state_dir_is_removed_by_the_next_start(
    start_backend_process: BackendProcessFactory, tmp_path: Path
) -> None:
    """Without SPINUP_STATE_DIR the state lives in a temporary dir; a supervisor SIGKILLed
    cannot remove its own, and its workers die with it: the next supervisor's start does."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    first = start_backend_process(workers=1, TMPDIR=str(temp))
    workers = first.worker_pids()
    (left,) = temp.glob(f"{STATE_DIR_PREFIX}{first.pid}-*")
    first.signal_supervisor(signal.SIGKILL)
    assert first.stop() == -signal.SIGKILL
    eventually(lambda: not any(pid_alive(pid) for pid in workers), what="the workers died too")
    assert left.is_dir()

    second = start_backend_process(workers=1, TMPDIR=str(temp))
    assert not left.exists()
    assert [path.name for path in temp.iterdir()] == [
        path.name for path in temp.glob(f"{STATE_DIR_PREFIX}{second.pid}-*")
    ]
    assert second.stop() == 0
    assert not list(temp.iterdir())
