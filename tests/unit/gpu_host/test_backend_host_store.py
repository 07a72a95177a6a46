"""The host store the backend's workers share: admission under concurrency (threads and
real processes), dead workers' sessions, the ticket replay cache, the reporting marks and
the bounds. Each "worker" is a connection of its own, as each process has."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from gpu_host.backend import host_store as host_store_module
from gpu_host.backend.host_store import (
    HostStore,
    TooManySessionsError,
    heartbeat_due,
    pid_alive,
)
from lambdas.domain.tickets import (
    ReplayCacheFullError,
    ReplayedTicketError,
    TicketVerifier,
    issue_ticket,
)

SECRET = "a-ticket-secret-of-at-least-32-bytes!"
CONTENDERS = 8


@pytest.fixture
def other_worker(host_store: HostStore) -> Iterator[HostStore]:
    """A second worker's connection (another pid, alive as far as the tests say)."""
    store = HostStore(host_store.path, pid=host_store.pid + 1)
    yield store
    store.close()


def always_alive(pid: int) -> bool:
    return True


def admit(store: HostStore, session_id: str, user: str = "ann", max_per_user: int = 2) -> None:
    store.admit(
        session_id=session_id,
        user=user,
        models=("text",),
        max_per_user=max_per_user,
        alive=always_alive,
    )


def test_the_per_user_limit_holds_across_workers(
    host_store: HostStore, other_worker: HostStore
) -> None:
    admit(host_store, "a")
    admit(other_worker, "b")
    with pytest.raises(TooManySessionsError, match="2 open sessions"):
        admit(host_store, "c")
    admit(other_worker, "d", user="bob")
    host_store.release("a")
    admit(other_worker, "c")
    assert host_store.session_count() == 3
    assert (host_store.sessions_of("ann"), host_store.sessions_of("bob")) == (2, 1)


def test_concurrent_admissions_from_threads_admit_the_limit_exactly(
    host_store: HostStore,
) -> None:
    """Eight workers (connections) admit ann at once: two win, six are refused."""
    stores = [HostStore(host_store.path, pid=host_store.pid + n) for n in range(CONTENDERS)]
    start = threading.Barrier(CONTENDERS)

    def contend(index: int) -> bool:
        start.wait()
        try:
            admit(stores[index], f"s{index}")
        except TooManySessionsError:
            return False
        return True

    with ThreadPoolExecutor(CONTENDERS) as pool:
        admitted = list(pool.map(contend, range(CONTENDERS)))
    for store in stores:
        store.close()
    assert admitted.count(True) == 2
    assert host_store.sessions_of("ann") == 2


def _admit_from_a_process(directory: str, index: int, barrier: Barrier) -> None:
    """A worker process: admit ann when every contender is ready, stay alive until every
    one has tried (a dead worker's sessions would be purged), exit 0 when admitted."""
    store = HostStore.open(Path(directory))
    barrier.wait()
    try:
        store.admit(session_id=f"p{index}", user="ann", models=(), max_per_user=2)
        admitted = True
    except TooManySessionsError:
        admitted = False
    barrier.wait()
    store.close()
    sys.exit(0 if admitted else 1)


def test_concurrent_admissions_from_processes_admit_the_limit_exactly(state_dir: Path) -> None:
    # Forked: each child opens its own connection after the fork, as a worker does.
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(CONTENDERS)
    processes = [
        context.Process(target=_admit_from_a_process, args=(str(state_dir), n, barrier))
        for n in range(CONTENDERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    exit_codes = [process.exitcode for process in processes]
    assert (exit_codes.count(0), exit_codes.count(1)) == (2, CONTENDERS - 2), exit_codes


def test_models_in_use_count_open_sessions_host_wide(
    host_store: HostStore, other_worker: HostStore
) -> None:
    host_store.admit(session_id="a", user="ann", models=("detect", "pose"), max_per_user=2)
    other_worker.admit(session_id="b", user="bob", models=("pose",), max_per_user=2)
    assert host_store.models_in_use() == {"detect": 1, "pose": 2}
    other_worker.release("b")
    assert host_store.models_in_use() == {"detect": 1, "pose": 1}
    host_store.purge_worker(host_store.pid)
    assert other_worker.models_in_use() == {}


def test_the_supervisor_removes_a_dead_workers_sessions(
    host_store: HostStore, other_worker: HostStore
) -> None:
    admit(other_worker, "a")
    admit(other_worker, "b")
    admit(host_store, "c", user="bob")
    assert host_store.purge_worker(other_worker.pid) == 2
    admit(host_store, "d")
    assert host_store.session_count() == 2


def test_an_admission_removes_the_sessions_of_workers_no_longer_alive(
    host_store: HostStore, other_worker: HostStore
) -> None:
    """The backstop: ann's two sessions were on a worker that died unreaped; her next hello
    on another worker finds them gone."""
    admit(other_worker, "a")
    admit(other_worker, "b")
    host_store.admit(
        session_id="c",
        user="ann",
        models=(),
        max_per_user=2,
        alive=lambda pid: pid != other_worker.pid,
    )
    assert host_store.sessions_of("ann") == 1


def test_pid_alive() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert pid_alive(finished.pid) is False
    assert pid_alive(os.getpid()) is True


def test_the_host_holds_at_most_max_sessions(
    host_store: HostStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_store_module, "MAX_SESSIONS", 3)
    for n in range(3):
        admit(host_store, f"s{n}", user=f"user-{n}")
    with pytest.raises(TooManySessionsError, match="this host has 3 open sessions"):
        admit(host_store, "s3", user="user-3")


def test_a_ticket_used_on_one_worker_is_refused_on_another(
    host_store: HostStore, other_worker: HostStore
) -> None:
    now = time.time()
    ticket = issue_ticket(SECRET, user="ann", session_id="s", host_id="gpu-0", now=now).token
    TicketVerifier(secret=SECRET, host_id="gpu-0", cache=host_store).verify(ticket, now=now)
    with pytest.raises(ReplayedTicketError, match="already used"):
        TicketVerifier(secret=SECRET, host_id="gpu-0", cache=other_worker).verify(ticket, now=now)


def test_expired_tickets_make_room_and_a_full_cache_refuses(
    host_store: HostStore, other_worker: HostStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_store_module, "REPLAY_CACHE_SIZE", 2)
    host_store.claim("a", forget_at=100.0, now=0.0)
    other_worker.claim("b", forget_at=200.0, now=0.0)
    with pytest.raises(ReplayCacheFullError, match="too many tickets"):
        host_store.claim("c", forget_at=200.0, now=50.0)
    other_worker.claim("c", forget_at=300.0, now=100.0)  # "a" expired: its room is free
    with pytest.raises(ReplayedTicketError):
        host_store.claim("b", forget_at=300.0, now=150.0)  # live entries are never evicted


def test_each_milestone_is_claimed_once_per_run(
    host_store: HostStore, other_worker: HostStore, state_dir: Path
) -> None:
    assert host_store.claim_milestone("ready_at", 10.0) is True
    assert other_worker.claim_milestone("ready_at", 11.0) is False
    assert other_worker.claim_milestone("models_loaded_at", 9.0) is True
    fresh = HostStore.create(state_dir)  # the next run starts afresh
    assert fresh.claim_milestone("ready_at", 50.0) is True
    fresh.close()


def test_one_heartbeat_per_period_host_wide(host_store: HostStore, other_worker: HostStore) -> None:
    assert host_store.claim_heartbeat(100.0, 30.0) == 100.0
    assert other_worker.claim_heartbeat(110.0, 30.0) == 100.0, "not due: the host sent one"
    assert other_worker.claim_heartbeat(130.0, 30.0) == 130.0
    assert host_store.claim_heartbeat(131.0, 30.0) == 130.0


@pytest.mark.parametrize(
    ("last", "now", "due"),
    [(None, 0.0, True), (100.0, 129.9, False), (100.0, 130.0, True), (100.0, 500.0, True)],
)
def test_heartbeat_due_at_most_every_period(last: float | None, now: float, due: bool) -> None:
    assert heartbeat_due(last, now, 30.0) is due


def test_a_new_store_forgets_the_previous_run(host_store: HostStore, state_dir: Path) -> None:
    admit(host_store, "a")
    host_store.claim("t", forget_at=time.time() + 60, now=time.time())
    fresh = HostStore.create(state_dir)
    assert fresh.session_count() == 0
    fresh.claim("t", forget_at=time.time() + 60, now=time.time())
    fresh.close()
