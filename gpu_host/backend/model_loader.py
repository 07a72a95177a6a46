"""Models loaded on demand: Triton runs with explicit model control, and a session that
needs a model Triton does not hold gets it loaded (docs/models.md, "Models loaded on demand").

Every worker process has a `ModelLoader`; they coordinate through the host store's model
rows (`HostStore.claim_model`): one worker loads a model, the others (and other sessions of
the same worker) wait for its row to read loaded. The budget — how many models may be loaded
at once — is decided by `model_budget.plan_load` inside that claim; the effects (Triton's
unload and load calls) happen here, after the claim, and their outcomes are written back
(`finish_unload`, `finish_load`).

A load runs in a task of its own, shielded from the session that asked: a client that goes
away mid-load does not leave the model half-recorded, and the sessions waiting for it get it.
The store's word "loaded" is checked against Triton's (`model_ready`) before a session relies
on it, so a restarted Triton (which holds only its start-up models) is loaded again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Protocol

from gpu_host.backend.host_store import ClaimAction, HostStore
from gpu_host.backend.triton_gateway import ModelLoadError, TritonUnreachableError

log = logging.getLogger(__name__)

POLL_S = 0.1
"""How often a waiting session asks the store again; a load takes a second or more."""


class ModelUnavailableError(Exception):
    """A model a session needs cannot be had: its load failed or timed out, or the model
    budget is full of models in use. The message is for people (a close reason)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        """Triton could not be asked at all (not a verdict on the model)."""


class ModelHost(Protocol):
    """What the loader needs of Triton (`TritonGateway`)."""

    async def model_ready(self, name: str) -> bool: ...

    async def load_model(self, name: str, *, timeout_s: float) -> None: ...

    async def unload_model(self, name: str) -> None: ...


OnLoading = Callable[[str], Awaitable[None]]
"""Told once per model a caller has to wait for (the session sends a `loading` notice)."""


class ModelLoader:
    def __init__(
        self,
        *,
        store: HostStore,
        triton: ModelHost,
        budget: int,
        pinned: Collection[str],
        load_timeout_s: float,
        warm: Callable[[str], Awaitable[None]] | None = None,
        on_change: Callable[[], None] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        """`pinned`: the default models, never unloaded. `warm`: one inference on a freshly
        loaded model, before it counts as loaded. `on_change`: the loaded set changed (the
        reporter writes it to the host record)."""
        self._store = store
        self._triton = triton
        self._budget = budget
        self._pinned = frozenset(pinned)
        self._load_timeout_s = load_timeout_s
        self._warm = warm
        self._on_change = on_change
        self._poll_s = poll_s
        self._loads: set[asyncio.Task[None]] = set()
        """Loads in flight: referenced here so that no task is collected mid-load."""

    @property
    def pinned(self) -> frozenset[str]:
        """The start-up models: never unloaded."""
        return self._pinned

    async def recover(self) -> None:
        """Load again what Triton lost (a restarted Triton holds its start-up models at most):
        the pinned models and every model an open session uses. Cheap when nothing is lost:
        one readiness question per model. Raises `ModelUnavailableError`."""
        in_use = await asyncio.to_thread(self._store.models_in_use)
        wanted = list(dict.fromkeys([*sorted(self._pinned), *sorted(in_use)]))
        try:
            lost = [name for name in wanted if not await self._triton.model_ready(name)]
        except TritonUnreachableError as exc:
            raise ModelUnavailableError(str(exc), unreachable=True) from exc
        if lost:
            log.warning("Triton lacks models it should hold: %s; loading them", lost)
            await self.ensure(lost)

    async def loaded(self) -> tuple[str, ...]:
        """The models loaded now, host-wide, as the store records them."""
        return await asyncio.to_thread(self._store.loaded_models)

    async def ensure(
        self, names: Sequence[str], *, on_loading: OnLoading | None = None
    ) -> tuple[str, ...]:
        """Return once Triton holds every model of `names`; the ones that were not loaded
        (this call loaded them or waited for them). Raises `ModelUnavailableError`."""
        # Side by side: Triton loads models in parallel, and a session ticking three new
        # models waits for the slowest load, not for the sum.
        waited = await asyncio.gather(*(self._ensure_one(name, on_loading) for name in names))
        return tuple(name for name, did in zip(names, waited, strict=True) if did)

    async def _ensure_one(self, name: str, on_loading: OnLoading | None) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._load_timeout_s
        told = False
        while True:
            claim = await asyncio.to_thread(
                self._store.claim_model, name, budget=self._budget, pinned=self._pinned
            )
            if claim.action is ClaimAction.READY:
                try:
                    ready = await self._triton.model_ready(name)
                except TritonUnreachableError as exc:
                    raise ModelUnavailableError(str(exc), unreachable=True) from exc
                if ready:
                    return told
                log.warning("model %s is recorded loaded but Triton lacks it; loading it", name)
                await asyncio.to_thread(self._store.forget_model, name)
                continue
            if claim.action is ClaimAction.REFUSED:
                raise ModelUnavailableError(claim.reason)
            # Triton may hold it already: loaded at its start (`--load-model`), or by a
            # worker that died before recording it. A second load would reload it.
            if (
                claim.action is ClaimAction.LOAD
                and not claim.evict
                and await self._held_already(name)
            ):
                return told
            if not told and on_loading is not None:
                await on_loading(name)
            told = True
            if claim.action is ClaimAction.LOAD:
                task = asyncio.create_task(self._load(name, claim.evict), name=f"load-{name}")
                self._loads.add(task)
                task.add_done_callback(self._loads.discard)
                try:
                    await asyncio.shield(task)
                except TritonUnreachableError as exc:
                    raise ModelUnavailableError(str(exc), unreachable=True) from exc
                except ModelLoadError as exc:
                    raise ModelUnavailableError(f"model {name} could not load: {exc}") from exc
                return True
            if loop.time() >= deadline:
                raise ModelUnavailableError(
                    f"model {name} still loading after {self._load_timeout_s:.0f} s"
                )
            await asyncio.sleep(self._poll_s)

    async def _held_already(self, name: str) -> bool:
        """After a LOAD claim: whether Triton holds `name` already (then it is recorded
        loaded). When Triton cannot say, the claim is given up."""
        try:
            held = await self._triton.model_ready(name)
        except TritonUnreachableError as exc:
            await asyncio.to_thread(self._store.finish_load, name, loaded=False)
            raise ModelUnavailableError(str(exc), unreachable=True) from exc
        if held:
            await asyncio.to_thread(self._store.finish_load, name, loaded=True)
            if self._on_change is not None:
                self._on_change()
        return held

    async def _load(self, name: str, evict: tuple[str, ...]) -> None:
        """Unload `evict`, then load `name`; record the outcomes, whatever happens."""
        store = self._store
        for evicted in evict:
            log.info("unloading model %s (least recently used, idle) to make room", evicted)
            try:
                await self._triton.unload_model(evicted)
            except ModelLoadError as exc:
                log.warning("%s", exc)
            finally:
                await asyncio.to_thread(store.finish_unload, evicted)
        loaded = False
        try:
            # Asked again (not only in `_held_already`): the unloads took time.
            if not await self._triton.model_ready(name):
                log.info("loading model %s", name)
                await self._triton.load_model(name, timeout_s=self._load_timeout_s)
            if self._warm is not None:
                try:
                    await self._warm(name)
                except Exception as exc:  # loaded all the same; a frame will say what fails
                    log.warning("warm-up of model %s failed: %s", name, exc)
            loaded = True
            log.info("model %s loaded", name)
        finally:
            await asyncio.to_thread(store.finish_load, name, loaded=loaded)
            if (loaded or evict) and self._on_change is not None:
                self._on_change()
