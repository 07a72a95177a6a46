"""The local host agent: what EC2 + systemd are on AWS, for the emulated instance.

It watches the emulated instance's state in moto. When the instance is `running` it brings
the host stack up (the real `tritonserver` on the CPU, then the backend process), the way
`spinup.target` does on the GPU instance; when it is anything else it takes the stack down.
Each observed state change is also passed on, as EventBridge passes EC2 state-change
events to the reconcile Lambda.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Step(enum.Enum):
    BRING_UP = "bring_up"
    TAKE_DOWN = "take_down"


def plan(instance_state: str | None, *, stack_up: bool) -> Step | None:
    """What the agent should do, given the instance's state and whether the stack is up."""
    wants_up = instance_state == "running"
    if wants_up and not stack_up:
        return Step.BRING_UP
    if not wants_up and stack_up:
        return Step.TAKE_DOWN
    return None


class HostStack(Protocol):
    """The processes an instance runs (Triton, backend), started and stopped as one."""

    @property
    def is_up(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class HostAgent:
    """Polls the instance state and drives the host stack; runs in its own thread."""

    def __init__(
        self,
        *,
        read_state: Callable[[], str | None],
        stack: HostStack,
        on_state_change: Callable[[str | None], None],
        poll_s: float,
    ) -> None:
        self._read_state = read_state
        self._stack = stack
        self._on_state_change = on_state_change
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="host-agent", daemon=True)
        self._last_state: str | None = None

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop polling and take the stack down; returns when nothing is left running."""
        self._stop.set()
        self._thread.join()
        self._stack.stop()

    def step(self) -> None:
        state = self._read_state()
        if state != self._last_state:
            log.info("instance state: %s -> %s", self._last_state, state)
            self._last_state = state
            self._on_state_change(state)
        match plan(state, stack_up=self._stack.is_up):
            case Step.BRING_UP:
                log.info("instance running: starting Triton and the backend")
                self._stack.start()
            case Step.TAKE_DOWN:
                log.info("instance %s: stopping the backend and Triton", state)
                self._stack.stop()
            case None:
                pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                # One failed poll (moto busy, a process that would not start) must not end
                # the agent: the next poll tries again, as systemd would restart a unit.
                log.exception("host agent step failed")
            self._stop.wait(self._poll_s)
