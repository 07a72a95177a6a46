"""The host store's model rows: claims decided host-wide (one loader per model, however many
workers ask), the budget against every worker's sessions, stamps, and dead workers' claims."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from gpu_host.backend.host_store import ClaimAction, HostStore, ModelClaim
from gpu_host.backend.model_budget import ModelState

CONTENDERS = 8


def alive(pid: int) -> bool:
    return True


def dead(pid: int) -> bool:
    return False


@pytest.fixture
def other_worker(host_store: HostStore) -> Iterator[HostStore]:
    store = HostStore(host_store.path, pid=host_store.pid + 1)
    yield store
    store.close()


def claim(store: HostStore, name: str, budget: int = 3, now: float = 1.0) -> ModelClaim:
    return store.claim_model(name, budget=budget, pinned=("a",), now=now, alive=alive)


def load(store: HostStore, name: str, now: float = 1.0, budget: int = 3) -> None:
    assert claim(store, name, budget, now).action is ClaimAction.LOAD
    store.finish_load(name, loaded=True, now=now)


def open_session(store: HostStore, session_id: str, *models: str) -> None:
    store.admit(session_id=session_id, user=session_id, models=models, max_per_user=9)


def test_one_claim_loads_and_the_others_wait_then_use_it(
    host_store: HostStore, other_worker: HostStore
) -> None:
    assert claim(host_store, "b") == ModelClaim(ClaimAction.LOAD)
    assert claim(other_worker, "b").action is ClaimAction.WAIT
    assert claim(host_store, "b").action is ClaimAction.WAIT  # another session, same worker
    host_store.finish_load("b", loaded=True)
    assert claim(other_worker, "b").action is ClaimAction.READY
    assert host_store.loaded_models() == ("b",)


def test_concurrent_claims_give_one_load(host_store: HostStore) -> None:
    stores = [HostStore(host_store.path, pid=host_store.pid + n) for n in range(CONTENDERS)]
    start = threading.Barrier(CONTENDERS)

    def contend(store: HostStore) -> ClaimAction:
        start.wait()
        return store.claim_model("b", budget=3, alive=alive).action

    with ThreadPoolExecutor(CONTENDERS) as pool:
        actions = list(pool.map(contend, stores))
    for store in stores:
        store.close()
    assert sorted(actions) == sorted([ClaimAction.LOAD] + [ClaimAction.WAIT] * (CONTENDERS - 1))


def test_a_failed_load_lets_the_next_claim_try_again(host_store: HostStore) -> None:
    load_claim = claim(host_store, "b")
    assert load_claim.action is ClaimAction.LOAD
    host_store.finish_load("b", loaded=False)
    assert host_store.loaded_models() == ()
    assert claim(host_store, "b").action is ClaimAction.LOAD


def test_the_budget_unloads_the_least_recently_used_idle_model_across_workers(
    host_store: HostStore, other_worker: HostStore
) -> None:
    load(host_store, "a", now=1)  # pinned
    load(host_store, "b", now=2)
    load(host_store, "c", now=3)
    open_session(other_worker, "s1", "b")  # b busy on the other worker
    assert claim(host_store, "d", now=4) == ModelClaim(ClaimAction.LOAD, evict=("c",))
    states = {m.name: m.state for m in host_store.models()}
    assert states == {"a": ModelState.LOADED, "b": ModelState.LOADED,
                      "c": ModelState.UNLOADING, "d": ModelState.LOADING}  # fmt: skip
    # Someone asking for c now waits for its unload, then loads it anew.
    assert claim(other_worker, "c", now=4).action is ClaimAction.WAIT
    host_store.finish_unload("c")
    host_store.finish_load("d", loaded=True, now=4)
    # Full: a pinned, b busy, d idle but the most recent... and the only idle one.
    assert claim(other_worker, "c", now=5) == ModelClaim(ClaimAction.LOAD, evict=("d",))


def test_every_loaded_model_busy_refuses(host_store: HostStore, other_worker: HostStore) -> None:
    load(host_store, "a", budget=2)
    load(host_store, "b", budget=2)
    open_session(other_worker, "s1", "b")
    refused = claim(host_store, "c", budget=2)
    assert refused.action is ClaimAction.REFUSED
    assert "model budget full" in refused.reason
    assert {m.name for m in host_store.models()} == {"a", "b"}  # nothing changed
    other_worker.release("s1", now=9)
    assert claim(host_store, "c", budget=2) == ModelClaim(ClaimAction.LOAD, evict=("b",))


def test_closing_a_session_stamps_its_models(host_store: HostStore) -> None:
    load(host_store, "b", now=2)
    load(host_store, "c", now=3)
    open_session(host_store, "s1", "b")
    host_store.release("s1", now=10)  # b used last now: c is the least recently used
    assert claim(host_store, "d", budget=2, now=11).evict == ("c",)


def test_a_dead_workers_claims_are_dropped(host_store: HostStore, other_worker: HostStore) -> None:
    assert claim(other_worker, "b").action is ClaimAction.LOAD
    assert claim(host_store, "b").action is ClaimAction.WAIT
    retry = host_store.claim_model("b", budget=3, alive=dead)
    assert retry.action is ClaimAction.LOAD


def test_a_forgotten_model_is_loaded_again(host_store: HostStore) -> None:
    load(host_store, "b")
    host_store.forget_model("b")
    assert claim(host_store, "b").action is ClaimAction.LOAD


def test_another_workers_outcome_does_not_touch_my_claim(
    host_store: HostStore, other_worker: HostStore
) -> None:
    assert claim(host_store, "b").action is ClaimAction.LOAD
    other_worker.finish_load("b", loaded=False)  # not its claim
    assert [m.state for m in host_store.models()] == [ModelState.LOADING]
