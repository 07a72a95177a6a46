"""The model loader on a fake Triton: loads once for many askers, tells them it loads,
unloads what the budget says, reports failures, and loads again what Triton lost."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from gpu_host.backend.host_store import HostStore
from gpu_host.backend.model_loader import ModelLoader, ModelUnavailableError
from gpu_host.backend.triton_gateway import ModelLoadError, TritonUnreachableError
from tests.support.waiting import eventually_async

pytestmark = pytest.mark.asyncio


class FakeTriton:
    def __init__(self, *held: str) -> None:
        self.held = set(held)
        self.loads: list[str] = []
        self.unloads: list[str] = []
        self.broken: set[str] = set()
        self.down = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def model_ready(self, name: str) -> bool:
        if self.down:
            raise TritonUnreachableError("inference server unavailable: StatusCode.UNAVAILABLE")
        return name in self.held

    async def load_model(self, name: str, *, timeout_s: float) -> None:
        self.loads.append(name)
        await self.gate.wait()
        if name in self.broken:
            raise ModelLoadError(f"{name}: failed to poll from model repository")
        self.held.add(name)

    async def unload_model(self, name: str) -> None:
        self.unloads.append(name)
        self.held.discard(name)


@pytest.fixture
def second_store(host_store: HostStore) -> Iterator[HostStore]:
    """A second worker's connection, under a live pid (our parent's), as in the other
    store tests: a claim trusts another worker's load only while that worker is alive. A
    made-up pid (ours + 1) was alive or not depending on the machine; when it was not and
    that worker's claim ran first, the other worker took the load over as a dead worker's,
    and Triton loaded the model twice."""
    store = HostStore(host_store.path, pid=os.getppid())
    yield store
    store.close()


def loader(store: HostStore, triton: FakeTriton, budget: int = 3, **kw: object) -> ModelLoader:
    return ModelLoader(
        store=store,
        triton=triton,
        budget=budget,
        pinned=("a",),
        load_timeout_s=5,
        poll_s=0.01,
        **kw,  # type: ignore[arg-type]
    )


async def test_concurrent_asks_on_two_workers_load_once_and_all_are_told(
    host_store: HostStore, second_store: HostStore
) -> None:
    triton = FakeTriton("a")
    triton.gate.clear()
    told: list[str] = []

    async def tell(name: str) -> None:
        told.append(name)

    changes: list[int] = []
    workers = [
        loader(host_store, triton, on_change=lambda: changes.append(1)),
        loader(second_store, triton),
    ]
    asks = [asyncio.create_task(workers[i % 2].ensure(["b"], on_loading=tell)) for i in range(6)]
    await eventually_async(lambda: triton.loads, what="a load started")
    triton.gate.set()
    results = await asyncio.gather(*asks)
    assert triton.loads == ["b"]
    assert results == [("b",)] * 6
    assert told == ["b"] * 6
    assert host_store.loaded_models() == ("b",)
    assert changes == [1], "the loading worker reports the change, once"
    assert await loader(host_store, triton).ensure(["b"]) == ()  # loaded: nothing to say


async def test_a_model_triton_holds_already_is_recorded_without_a_load(
    host_store: HostStore,
) -> None:
    triton = FakeTriton("a")
    told: list[str] = []

    async def tell(name: str) -> None:
        told.append(name)

    assert await loader(host_store, triton).ensure(["a"], on_loading=tell) == ()
    assert (triton.loads, told, host_store.loaded_models()) == ([], [], ("a",))


async def test_a_failed_load_is_reported_and_tried_again_later(host_store: HostStore) -> None:
    triton = FakeTriton()
    triton.broken.add("b")
    with pytest.raises(ModelUnavailableError, match=r"b could not load: .*poll") as failure:
        await loader(host_store, triton).ensure(["b"])
    assert not failure.value.unreachable
    assert host_store.models() == ()
    triton.broken.clear()
    await loader(host_store, triton).ensure(["b"])
    assert triton.loads == ["b", "b"]


async def test_the_budget_unloads_the_idle_model_before_loading(host_store: HostStore) -> None:
    triton = FakeTriton()
    warmed: list[str] = []

    async def warm(name: str) -> None:
        warmed.append(name)

    models = loader(host_store, triton, budget=2, warm=warm)
    await models.ensure(["a", "b"])
    await models.ensure(["c"])
    assert triton.unloads == ["b"]
    assert triton.held == {"a", "c"}
    assert host_store.loaded_models() == ("a", "c")
    assert sorted(warmed) == ["a", "b", "c"]


async def test_a_full_budget_of_busy_models_refuses(host_store: HostStore) -> None:
    triton = FakeTriton()
    models = loader(host_store, triton, budget=2)
    await models.ensure(["a", "b"])
    host_store.admit(session_id="s", user="u", models=("b",), max_per_user=1)
    with pytest.raises(ModelUnavailableError, match="model budget full"):
        await models.ensure(["c"])
    assert triton.unloads == []
    assert "c" not in triton.loads


async def test_triton_unreachable_is_said_so(host_store: HostStore) -> None:
    triton = FakeTriton()
    triton.down = True
    with pytest.raises(ModelUnavailableError) as failure:
        await loader(host_store, triton).ensure(["b"])
    assert failure.value.unreachable
    assert host_store.models() == ()


async def test_recover_loads_what_a_restarted_triton_lost(host_store: HostStore) -> None:
    triton = FakeTriton()
    models = loader(host_store, triton)
    await models.ensure(["a", "b", "c"])
    host_store.admit(session_id="s", user="u", models=("b",), max_per_user=1)
    triton.held.clear()  # Triton restarted
    await models.recover()
    assert triton.held == {"a", "b"}  # pinned and in use; c nobody uses
    assert sorted(triton.loads) == ["a", "a", "b", "b", "c"]  # loads run side by side


async def test_a_session_gone_mid_load_leaves_the_load_to_finish(host_store: HostStore) -> None:
    triton = FakeTriton()
    triton.gate.clear()
    ask = asyncio.create_task(loader(host_store, triton).ensure(["b"]))
    await eventually_async(lambda: triton.loads, what="a load started")
    ask.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ask
    triton.gate.set()
    await eventually_async(
        host_store.loaded_models, lambda loaded: loaded == ("b",), what="b recorded loaded"
    )
