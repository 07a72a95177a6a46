"""The host's model budget: whether one more model may load, and what it takes.

A pure decision on a snapshot of the host store (`host_store.HostStore.claim_model` takes it
and applies the answer in the same transaction, so workers deciding at once cannot both
take the last slot). The effects — Triton's unload and load calls — are the loader's
(`model_loader`).

Rules (docs/models.md, "Models loaded on demand"):
- a model that is loaded, loading or unloading needs no decision here (the caller uses it or
  waits for it);
- every model loaded or loading counts against `budget`; one being unloaded does not (its
  slot was handed to the load that unloads it);
- when loading one more would exceed the budget, the least recently used models that are
  idle (no open session on any worker uses them), not pinned (the default models, loaded at
  start, are never unloaded) and not still loading are unloaded first, as few as needed;
  ties go by name, so the choice is deterministic;
- when too few are idle, the load is refused: the budget is never exceeded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class ModelState(StrEnum):
    LOADING = "loading"
    LOADED = "loaded"
    UNLOADING = "unloading"


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model Triton holds (or is about to hold), as the host store records it."""

    name: str
    state: ModelState
    last_used: float
    """When a session last used it (opened with it, or closed): epoch seconds."""


@dataclass(frozen=True, slots=True)
class Load:
    """Load the wanted model after unloading `evict` (least recently used first)."""

    evict: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refuse:
    """Loading it would exceed the budget and too few loaded models are idle."""

    reason: str


Decision = Load | Refuse


def plan_load(
    models: Sequence[LoadedModel],
    wanted: str,
    *,
    budget: int,
    in_use: Mapping[str, int],
    pinned: Collection[str],
) -> Decision:
    """What loading `wanted` (not among `models`) takes within `budget` loaded models.

    `in_use`: open sessions per model, every worker's; `pinned`: models never unloaded."""
    if budget < 1:
        raise ValueError("budget must be >= 1")
    if any(m.name == wanted for m in models):
        raise ValueError(f"{wanted!r} is already {_state_of(models, wanted)}")
    counted = [m for m in models if m.state is not ModelState.UNLOADING]
    excess = len(counted) + 1 - budget
    if excess <= 0:
        return Load()
    idle = sorted(
        (
            m
            for m in counted
            if m.state is ModelState.LOADED and m.name not in pinned and in_use.get(m.name, 0) == 0
        ),
        key=lambda m: (m.last_used, m.name),
    )
    if len(idle) < excess:
        # Short: it becomes a WebSocket close reason (at most 123 bytes).
        return Refuse(
            f"model budget full ({budget} loaded, too few idle): {wanted} cannot load now"
        )
    return Load(evict=tuple(m.name for m in idle[:excess]))


def _state_of(models: Sequence[LoadedModel], name: str) -> str:
    return next(m.state.value for m in models if m.name == name)
