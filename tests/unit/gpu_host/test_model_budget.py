"""The model budget's decision (`model_budget.plan_load`): named cases, then every snapshot of
up to three models (each state, in use or not, pinned or not, two stamps) against every
budget, checked against the rules stated independently here."""

from __future__ import annotations

import itertools

import pytest

from gpu_host.backend.model_budget import Load, LoadedModel, ModelState, Refuse, plan_load

LOADED, LOADING, UNLOADING = ModelState.LOADED, ModelState.LOADING, ModelState.UNLOADING


def m(name: str, last_used: float = 0.0, state: ModelState = LOADED) -> LoadedModel:
    return LoadedModel(name, state, last_used)


@pytest.mark.parametrize(
    ("models", "budget", "in_use", "pinned", "expected"),
    [
        pytest.param([], 1, {}, (), Load(), id="empty host"),
        pytest.param([m("a")], 2, {}, (), Load(), id="room left"),
        pytest.param([m("a", 1), m("b", 2)], 2, {}, (), Load(("a",)), id="lru idle goes"),
        pytest.param([m("a", 1), m("b", 2)], 2, {"a": 1}, (), Load(("b",)), id="busy one stays"),
        pytest.param([m("a", 1), m("b", 2)], 2, {}, ("a",), Load(("b",)), id="pinned one stays"),
        pytest.param([m("a", 1), m("b", 1)], 2, {}, (), Load(("a",)), id="tie by name"),
        pytest.param(
            [m("a", 1), m("b", 2)], 2, {"a": 1, "b": 3}, (), Refuse(""), id="all busy: refuse"
        ),
        pytest.param(
            [m("a", 1, LOADING), m("b", 2)], 2, {}, (), Load(("b",)), id="loading not evicted"
        ),
        pytest.param(
            [m("a", 1, UNLOADING), m("b", 2)], 2, {}, (), Load(), id="unloading not counted"
        ),
        pytest.param(
            [m("a", 1), m("b", 2), m("c", 3)], 1, {}, (), Load(("a", "b", "c")), id="over budget"
        ),
    ],
)
def test_named_cases(
    models: list[LoadedModel],
    budget: int,
    in_use: dict[str, int],
    pinned: tuple[str, ...],
    expected: Load | Refuse,
) -> None:
    decision = plan_load(models, "new", budget=budget, in_use=in_use, pinned=pinned)
    if isinstance(expected, Refuse):
        assert isinstance(decision, Refuse)
        assert "model budget full" in decision.reason
        assert "new" in decision.reason
        assert len(decision.reason.encode()) <= 123  # it becomes a close reason
    else:
        assert decision == expected


def test_the_wanted_model_must_not_be_recorded() -> None:
    with pytest.raises(ValueError, match="already loading"):
        plan_load([m("new", state=LOADING)], "new", budget=3, in_use={}, pinned=())


def test_the_budget_must_hold_one_model() -> None:
    with pytest.raises(ValueError, match="budget"):
        plan_load([], "new", budget=0, in_use={}, pinned=())


NAMES = ("a", "b", "c")
VARIANTS = list(itertools.product((None, *ModelState), (False, True), (False, True), (1.0, 2.0)))
"""Per model: absent or its state, in use, pinned, last used."""


def _snapshots() -> list[tuple[list[LoadedModel], dict[str, int], set[str]]]:
    snapshots = []
    for combo in itertools.product(VARIANTS, repeat=len(NAMES)):
        models, in_use, pinned = [], {}, set()
        for name, (state, used, pin, stamp) in zip(NAMES, combo, strict=True):
            if state is not None:
                models.append(LoadedModel(name, state, stamp))
            if used:
                in_use[name] = 1
            if pin:
                pinned.add(name)
        snapshots.append((models, in_use, pinned))
    return snapshots


SNAPSHOTS = _snapshots()


@pytest.mark.parametrize("budget", [1, 2, 3, 4])
def test_every_small_snapshot_follows_the_rules(budget: int) -> None:
    for models, in_use, pinned in SNAPSHOTS:
        decision = plan_load(models, "new", budget=budget, in_use=in_use, pinned=pinned)
        counted = [x for x in models if x.state is not UNLOADING]
        evictable = [
            x
            for x in counted
            if x.state is LOADED and x.name not in pinned and in_use.get(x.name, 0) == 0
        ]
        excess = max(0, len(counted) + 1 - budget)
        if len(evictable) < excess:
            assert isinstance(decision, Refuse), (models, in_use, pinned)
            continue
        assert isinstance(decision, Load), (models, in_use, pinned)
        # As few as needed, each evictable, none twice.
        assert len(decision.evict) == excess
        assert len(set(decision.evict)) == excess
        assert set(decision.evict) <= {x.name for x in evictable}
        # Never busy, pinned or still loading.
        for name in decision.evict:
            assert in_use.get(name, 0) == 0
            assert name not in pinned
        # Least recently used first: no idle model left loaded is older than one evicted.
        stamps = {x.name: x.last_used for x in models}
        kept = [x.name for x in evictable if x.name not in decision.evict]
        for evicted in decision.evict:
            assert all((stamps[evicted], evicted) < (stamps[k], k) for k in kept)
        # The budget holds after the load.
        assert len(counted) - excess + 1 <= budget
