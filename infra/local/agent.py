"""The local host agent: what EC2, systemd and each host's lifecycle script are in AWS.

It watches the emulated fleet as each host would watch its own instance metadata, and does
what the host's lifecycle script does on a GPU instance:

- entering the warm pool (target `Warmed:Stopped`): initialize — locally nothing to install,
  only the on-disk marker that makes it idempotent — and complete the lifecycle action;
- every start (target `InService`): initialize if the marker is missing, start the host
  stack (Triton, then the backend) fresh, wait until the backend answers ready, and complete
  the action (CONTINUE; ABANDON when the stack does not come up);
- a host that leaves service (stopped, terminated, or on its way back to the pool): take its
  stack down.

Each boot of an instance is handled once, as the lifecycle script runs once per boot: a start
that follows a stop before the agent looked is still a new boot, so it gets a fresh stack even
if the previous one never went down. Each host runs on its slot's ports; a new stack on a slot
waits until the previous one there is gone.

Every EC2 state change is passed on, as EventBridge passes "EC2 Instance State-change
Notification" events to the reconcile Lambda. `plan` decides; the rest carries it out.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from botocore.exceptions import ClientError

from infra.local.fleet import Ec2StateChange, HostMetadata, LifecycleResult

log = logging.getLogger(__name__)

IN_SERVICE = "InService"
HEARTBEAT_EVERY_S = 30.0
"""While a stack starts, the host records a lifecycle heartbeat this often (the hook's
heartbeat timeout is minutes)."""
JOIN_TIMEOUT_S = 60.0
"""At close, how long to wait for one host's stack to stop (its stop escalates to SIGKILL
well within this)."""
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")


# ---- the decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunnerView:
    """A host stack the agent runs on a slot, for one boot of one instance."""

    instance_id: str
    boot: int
    stopping: bool = False


@dataclass(frozen=True)
class Prepare:
    """Entering the warm pool: initialize, then complete the lifecycle action."""

    instance_id: str
    boot: int


@dataclass(frozen=True)
class Launch:
    """Starting: a fresh host stack on the slot, and the lifecycle action completed once ready."""

    slot: int
    instance_id: str
    boot: int


@dataclass(frozen=True)
class TakeDown:
    slot: int


Action = Prepare | Launch | TakeDown


def plan(
    hosts: Sequence[HostMetadata],
    runners: Mapping[int, RunnerView],
    handled: Set[tuple[str, int]],
) -> list[Action]:
    """What to do, given the running instances, the stacks up (or starting, or stopping) per
    slot, and the boots (instance id, boot) already handled."""
    actions: list[Action] = []
    on_slot = {host.slot: host for host in hosts}
    for slot, runner in sorted(runners.items()):
        host = on_slot.get(slot)
        wanted = (
            host is not None
            and (host.instance_id, host.boot) == (runner.instance_id, runner.boot)
            and host.target_lifecycle_state == IN_SERVICE
        )
        if not wanted and not runner.stopping:
            actions.append(TakeDown(slot))
    for host in hosts:
        if (host.instance_id, host.boot) in handled:
            continue
        if host.target_lifecycle_state.startswith("Warmed:"):
            actions.append(Prepare(host.instance_id, host.boot))
        elif host.target_lifecycle_state == IN_SERVICE and host.slot not in runners:
            actions.append(Launch(host.slot, host.instance_id, host.boot))
        # else: the slot's previous stack is still stopping; launch once it is gone.
    return actions


# ---- the edges -----------------------------------------------------------------------------


class HostFleet(Protocol):
    """What a host reaches of the fleet: its metadata and the Auto Scaling API."""

    def hosts(self) -> tuple[HostMetadata, ...]: ...

    def complete_lifecycle_action(self, instance_id: str, result: LifecycleResult) -> None: ...

    def record_heartbeat(self, instance_id: str) -> None: ...

    def drain_ec2_events(self) -> list[Ec2StateChange]: ...


class HostStack(Protocol):
    """One host's processes (Triton, backend), started and stopped as one."""

    def start(self) -> None: ...

    def ready(self) -> bool: ...

    def failure(self) -> str | None: ...

    def stop(self) -> None: ...


class Initializer:
    """Initialize, once per instance: on a GPU host it installs everything and leaves a
    marker on the instance's disk; locally there is nothing to install, only the marker."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def marker(self, instance_id: str) -> Path:
        if not _INSTANCE_ID.fullmatch(instance_id):
            raise ValueError(f"not an instance id: {instance_id!r}")
        return self._root / instance_id / "initialized"

    def ensure(self, instance_id: str) -> bool:
        """Initialize unless done; True when it was done now."""
        marker = self.marker(instance_id)
        if marker.exists():
            return False
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{time.time():.0f}\n")
        log.info("%s: initialized", instance_id)
        return True

    def forget(self, instance_id: str) -> None:
        """The instance is terminated: its disk, and the marker with it, are gone."""
        shutil.rmtree(self.marker(instance_id).parent, ignore_errors=True)


class HostStartError(RuntimeError):
    """The stack did not come up."""


@dataclass(frozen=True)
class RunnerTiming:
    poll_s: float
    ready_timeout_s: float
    heartbeat_every_s: float = HEARTBEAT_EVERY_S


class HostRunner:
    """One boot of one host: starts its stack, completes the lifecycle action, keeps the
    stack until told to stop. Its thread lives as long as the stack, whose processes die
    with the thread that started them."""

    def __init__(
        self,
        *,
        instance_id: str,
        boot: int,
        stack: HostStack,
        fleet: HostFleet,
        initializer: Initializer,
        timing: RunnerTiming,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance_id = instance_id
        self.boot = boot
        self._stack = stack
        self._fleet = fleet
        self._initializer = initializer
        self._timing = timing
        self._clock = clock
        self._stop = threading.Event()
        self._up = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"host-{instance_id}-{boot}", daemon=True
        )

    @property
    def view(self) -> RunnerView:
        return RunnerView(self.instance_id, self.boot, stopping=self._stop.is_set())

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def up(self) -> bool:
        return self._up.is_set() and not self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Returns at once; the host's thread stops the stack. A stack still starting is
        stopped here, which cuts Triton's start short."""
        if self._stop.is_set():
            return
        log.info("%s (boot %d): taking the host stack down", self.instance_id, self.boot)
        self._stop.set()
        if not self._up.is_set():
            self._stack.stop()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self._bring_up()
        except Exception as error:
            self._stack.stop()
            if self._stop.is_set():
                log.info("%s (boot %d): start stopped", self.instance_id, self.boot)
                return
            log.error(
                "%s (boot %d): the host did not come up: %s", self.instance_id, self.boot, error
            )
            self._complete("ABANDON")
            return
        self._up.set()
        log.info("%s (boot %d): ready", self.instance_id, self.boot)
        self._complete("CONTINUE")
        reported = False
        while not self._stop.wait(self._timing.poll_s):
            failure = self._stack.failure()
            if failure and not reported:
                # systemd would restart it; here reconcile sees the host stop answering.
                log.error("%s: %s", self.instance_id, failure)
                reported = True
        self._stack.stop()

    def _bring_up(self) -> None:
        if self._initializer.ensure(self.instance_id):
            log.info("%s: started before it was initialized (the pool was empty)", self.instance_id)
        log.info("%s (boot %d): starting the host stack", self.instance_id, self.boot)
        self._stack.start()
        deadline = self._clock() + self._timing.ready_timeout_s
        beat = self._clock()
        while not self._stack.ready():
            if self._stop.wait(self._timing.poll_s):
                raise HostStartError("stopped while starting")
            failure = self._stack.failure()
            if failure:
                raise HostStartError(failure)
            now = self._clock()
            if now >= deadline:
                raise HostStartError(f"not ready after {self._timing.ready_timeout_s:g} s")
            if now - beat >= self._timing.heartbeat_every_s:
                beat = now
                self._heartbeat()
        if self._stop.is_set():
            raise HostStartError("stopped while starting")

    def _heartbeat(self) -> None:
        try:
            self._fleet.record_heartbeat(self.instance_id)
        except ClientError as error:
            log.warning("%s: heartbeat refused: %s", self.instance_id, error)

    def _complete(self, result: LifecycleResult) -> None:
        try:
            self._fleet.complete_lifecycle_action(self.instance_id, result)
        except ClientError as error:
            # No action waiting (it timed out, or the instance left): nothing to complete.
            log.warning("%s: lifecycle action %s refused: %s", self.instance_id, result, error)


class HostAgent:
    """Polls the fleet and drives one host stack per instance in service; its own thread."""

    def __init__(
        self,
        *,
        fleet: HostFleet,
        make_stack: Callable[[int, str], HostStack],
        initializer: Initializer,
        on_state_change: Callable[[str, str], None],
        poll_s: float,
        ready_timeout_s: float,
    ) -> None:
        self._fleet = fleet
        self._make_stack = make_stack
        self._initializer = initializer
        self._on_state_change = on_state_change
        self._poll_s = poll_s
        self._timing = RunnerTiming(poll_s=min(poll_s, 0.5), ready_timeout_s=ready_timeout_s)
        self._runners: dict[int, HostRunner] = {}
        self._handled: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="host-agent", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop polling and take every stack down; returns when nothing is left running."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        runners = list(self._runners.values())
        for runner in runners:
            runner.stop()
        for runner in runners:
            runner.join(JOIN_TIMEOUT_S)

    def runners(self) -> dict[int, RunnerView]:
        """The stacks per slot (for tests and logs)."""
        return {slot: r.view for slot, r in self._runners.items() if r.alive}

    def step(self) -> None:
        for event in self._fleet.drain_ec2_events():
            log.info("instance %s: %s", event.instance_id, event.state)
            self._on_state_change(event.instance_id, event.state)
            if event.state == "terminated":
                self._initializer.forget(event.instance_id)
        hosts = self._fleet.hosts()
        self._runners = {slot: r for slot, r in self._runners.items() if r.alive}
        # A boot that is over never comes back: forget it, so the set stays small.
        self._handled &= {(host.instance_id, host.boot) for host in hosts}
        views = {slot: runner.view for slot, runner in self._runners.items()}
        for action in plan(hosts, views, self._handled):
            match action:
                case Prepare(instance_id, boot):
                    self._handled.add((instance_id, boot))
                    self._initializer.ensure(instance_id)
                    self._complete(instance_id, "CONTINUE")
                case Launch(slot, instance_id, boot):
                    self._handled.add((instance_id, boot))
                    runner = HostRunner(
                        instance_id=instance_id,
                        boot=boot,
                        stack=self._make_stack(slot, instance_id),
                        fleet=self._fleet,
                        initializer=self._initializer,
                        timing=self._timing,
                    )
                    self._runners[slot] = runner
                    runner.start()
                case TakeDown(slot):
                    self._runners[slot].stop()

    def _complete(self, instance_id: str, result: LifecycleResult) -> None:
        try:
            self._fleet.complete_lifecycle_action(instance_id, result)
        except ClientError as error:
            log.warning("%s: lifecycle action %s refused: %s", instance_id, result, error)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                # One failed poll (moto busy, reconcile failing) must not end the agent: the
                # next poll tries again, as systemd would restart a unit.
                log.exception("host agent step failed")
            self._stop.wait(self._poll_s)
