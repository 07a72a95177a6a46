"""The local host agent: its decision (`plan`), and the agent driving fake stacks over the
emulated fleet as each host's lifecycle script would."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.local.agent import (
    HostAgent,
    Initializer,
    Launch,
    Prepare,
    RunnerView,
    TakeDown,
    plan,
)
from infra.local.fleet import EmulatedFleet, HostMetadata
from tests.support.waiting import eventually
from tests.unit.local.conftest import Aws

A, B = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"


def host(instance: str, target: str, *, boot: int = 1, slot: int = 0) -> HostMetadata:
    return HostMetadata(instance, target, boot=boot, slot=slot)


@pytest.mark.parametrize(
    ("hosts", "runners", "handled", "expected"),
    [
        pytest.param(
            [host(A, "Warmed:Stopped")], {}, set(), [Prepare(A, 1)], id="entering the pool"
        ),
        pytest.param([host(A, "Warmed:Stopped")], {}, {(A, 1)}, [], id="prepared once a boot"),
        pytest.param([host(A, "InService")], {}, set(), [Launch(0, A, 1)], id="starting"),
        pytest.param(
            [host(A, "InService", slot=1)],
            {},
            set(),
            [Launch(1, A, 1)],
            id="on its own slot",
        ),
        pytest.param(
            [host(A, "InService")], {0: RunnerView(A, 1)}, {(A, 1)}, [], id="running: nothing"
        ),
        pytest.param(
            [host(A, "InService")],
            {},
            {(A, 1)},
            [],
            id="a boot whose start failed is not started again",
        ),
        pytest.param([], {0: RunnerView(A, 1)}, {(A, 1)}, [TakeDown(0)], id="stopped: take down"),
        pytest.param(
            [host(A, "Warmed:Stopped")],
            {0: RunnerView(A, 1)},
            {(A, 1)},
            [TakeDown(0)],
            id="back to the pool: take down",
        ),
        pytest.param(
            [host(A, "Terminated")],
            {0: RunnerView(A, 1)},
            {(A, 1)},
            [TakeDown(0)],
            id="terminating: take down",
        ),
        pytest.param(
            [host(A, "InService", boot=2)],
            {0: RunnerView(A, 1)},
            {(A, 1)},
            [TakeDown(0)],
            id="a new boot unseen stop: the old stack goes first",
        ),
        pytest.param(
            [host(A, "InService", boot=2)],
            {0: RunnerView(A, 1, stopping=True)},
            set(),
            [],
            id="a new boot waits for the slot",
        ),
        pytest.param(
            [host(B, "InService")],
            {0: RunnerView(A, 1)},
            set(),
            [TakeDown(0)],
            id="another instance on the slot: the old stack goes first",
        ),
        pytest.param(
            [host(A, "InService"), host(B, "Warmed:Stopped", slot=1)],
            {},
            set(),
            [Launch(0, A, 1), Prepare(B, 1)],
            id="several hosts",
        ),
    ],
)
def test_plan(
    hosts: list[HostMetadata],
    runners: dict[int, RunnerView],
    handled: set[tuple[str, int]],
    expected: list[object],
) -> None:
    assert plan(hosts, runners, handled) == expected


def test_the_marker_makes_initialize_idempotent(tmp_path: Path) -> None:
    initializer = Initializer(tmp_path)
    assert initializer.ensure(A) is True
    assert initializer.ensure(A) is False
    assert initializer.marker(A).is_file()
    initializer.forget(A)
    assert not initializer.marker(A).exists()
    with pytest.raises(ValueError, match="not an instance id"):
        initializer.marker("../etc")


# ---- the agent over the emulated fleet, with fake stacks -----------------------------------


class FakeStack:
    def __init__(self, slot: int, instance_id: str) -> None:
        self.slot = slot
        self.instance_id = instance_id
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.is_ready = threading.Event()
        self.broken: str | None = None
        self.started_by = ""

    def start(self) -> None:
        self.started_by = threading.current_thread().name
        self.started.set()

    def ready(self) -> bool:
        return self.is_ready.is_set()

    def failure(self) -> str | None:
        return self.broken

    def stop(self) -> None:
        self.stopped.set()


class Harness:
    def __init__(self, fleet: EmulatedFleet, root: Path, *, ready_timeout_s: float) -> None:
        self.fleet = fleet
        self.stacks: list[FakeStack] = []
        self.events: list[tuple[str, str]] = []
        self.initializer = Initializer(root)
        self.agent = HostAgent(
            fleet=fleet,
            make_stack=self._make,
            initializer=self.initializer,
            on_state_change=lambda instance, state: self.events.append((instance, state)),
            poll_s=0.01,
            ready_timeout_s=ready_timeout_s,
        )

    def _make(self, slot: int, instance_id: str) -> FakeStack:
        stack = FakeStack(slot, instance_id)
        self.stacks.append(stack)
        return stack

    def state(self, instance: str) -> str | None:
        found = self.fleet.describe().get(instance)
        return None if found is None else found.lifecycle_state

    def step_until(self, what: str, holds: Callable[[], object]) -> None:
        """Agent steps (as its poll would) until `holds()` is true."""

        def probe() -> bool:
            self.agent.step()
            return bool(holds())

        eventually(probe, what=what, interval_s=0.01)

    def bring_into_service(self, instance: str) -> FakeStack:
        self.step_until("a stack starts", lambda: self.stack_of(instance) is not None)
        stack = self.stack_of(instance)
        assert stack is not None
        stack.is_ready.set()
        self.step_until("in service", lambda: self.state(instance) == "InService")
        return stack

    def stack_of(self, instance: str) -> FakeStack | None:
        mine = [s for s in self.stacks if s.instance_id == instance and not s.stopped.is_set()]
        return mine[-1] if mine else None


@pytest.fixture
def harness(aws: Aws, tmp_path: Path) -> Iterator[Harness]:
    made = Harness(aws.fleet(max_size=2, warm=1), tmp_path, ready_timeout_s=10)
    yield made
    made.agent.close()


def warmed(harness: Harness) -> str:
    """The agent initializes the pool's instance; its id."""
    instance = harness.fleet.describe().instances[0].instance_id
    harness.agent.step()
    assert harness.state(instance) == "Warmed:Stopped"
    return instance


def test_entering_the_pool_initializes_without_a_stack(harness: Harness) -> None:
    instance = warmed(harness)
    assert harness.initializer.marker(instance).is_file()
    assert harness.stacks == []


def test_a_start_completes_once_the_backend_is_ready(harness: Harness) -> None:
    instance = warmed(harness)
    harness.fleet.set_desired_capacity(1)
    harness.step_until("a stack starts", lambda: harness.stacks)
    stack = harness.stacks[0]
    assert (stack.slot, stack.instance_id) == (0, instance)
    assert stack.started_by.startswith("host-"), "started by the host's own thread"
    for _ in range(3):
        harness.agent.step()
    assert harness.state(instance) == "Pending:Wait", "not before it is ready"
    stack.is_ready.set()
    harness.step_until("in service", lambda: harness.state(instance) == "InService")


def test_a_start_right_after_a_stop_gets_a_fresh_stack_that_reaches_ready(
    harness: Harness,
) -> None:
    """Given a host in service, when it is stopped and started again before the agent looks,
    then its old stack goes down and a fresh one starts and completes the new start."""
    instance = warmed(harness)
    harness.fleet.set_desired_capacity(1)
    old = harness.bring_into_service(instance)
    harness.fleet.set_protection(instance, protected=False)
    harness.fleet.set_desired_capacity(0)
    harness.fleet.set_desired_capacity(1)
    assert harness.state(instance) == "Pending:Wait"

    harness.step_until("the old stack is stopped", old.stopped.is_set)
    new = harness.bring_into_service(instance)
    assert new is not old
    assert not new.stopped.is_set()


def test_a_host_that_leaves_service_is_taken_down(harness: Harness) -> None:
    instance = warmed(harness)
    harness.fleet.set_desired_capacity(1)
    stack = harness.bring_into_service(instance)
    harness.fleet.set_protection(instance, protected=False)
    harness.fleet.set_desired_capacity(0)
    harness.step_until("the stack is stopped", stack.stopped.is_set)
    eventually(harness.agent.runners, lambda runners: runners == {}, what="no stack left")


@pytest.mark.parametrize(("broken", "ready_timeout_s"), [("backend exited", 10.0), (None, 0.05)])
def test_a_stack_that_does_not_come_up_abandons_the_start(
    aws: Aws, tmp_path: Path, broken: str | None, ready_timeout_s: float
) -> None:
    harness = Harness(aws.fleet(max_size=1, warm=0), tmp_path, ready_timeout_s=ready_timeout_s)
    try:
        harness.fleet.set_desired_capacity(1)
        first = harness.fleet.describe().instances[0].instance_id
        harness.step_until("a stack starts", lambda: harness.stacks)
        harness.stacks[0].broken = broken
        harness.step_until("abandoned", lambda: harness.state(first) is None)
        assert harness.fleet.history(first)[-2:] == ["Terminating", "Terminated"]
        assert harness.stacks[0].stopped.is_set()
        replacement = harness.fleet.describe().instances[0]
        assert replacement.lifecycle_state == "Pending:Wait", "the group replaced it"
        harness.step_until(
            "its disk is gone with it", lambda: not harness.initializer.marker(first).exists()
        )
    finally:
        harness.agent.close()


def test_two_hosts_run_on_two_slots_and_close_stops_both(harness: Harness) -> None:
    warmed(harness)
    harness.fleet.set_desired_capacity(2)
    serving = [i.instance_id for i in harness.fleet.describe().serving]
    stacks = [harness.bring_into_service(instance) for instance in serving]
    assert sorted(s.slot for s in stacks) == [0, 1]
    harness.agent.close()
    assert all(s.stopped.is_set() for s in stacks)


def test_every_ec2_state_change_is_passed_on(harness: Harness) -> None:
    instance = warmed(harness)
    harness.agent.step()
    assert harness.events == [
        (instance, "pending"),
        (instance, "running"),
        (instance, "stopping"),
        (instance, "stopped"),
    ]
