"""The host's answer to the Auto Scaling launch hook, at every boot (spinup-lifecycle.service).

The group's launch lifecycle hook (autoscaling:EC2_INSTANCE_LAUNCHING, default result
ABANDON) pauses an instance twice: entering the warm pool (`Warmed:Pending:Wait`) and going
into service (`Pending:Wait`); an instance launched straight into service (empty pool) is
paused only at `Pending:Wait`.
https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html
The instance learns which pause this boot is from instance metadata
(`autoscaling/target-lifecycle-state`, `imds.py`) and `plan` decides the steps:

- `Warmed:*` (e.g. `Warmed:Stopped`; not `Warmed:Terminated`): initialize once, complete;
  the group then stops the instance into the pool.
- `InService`: initialize once (an empty pool launches straight into service), start
  `spinup.target`, await the backend's readiness, complete.
- `Terminated`, `Warmed:Terminated`: nothing; the group is removing the instance.
- none (metadata 404: in no group), `Standby`, `Detached`, anything else: initialize once,
  start, await ready, as a standalone host; no hook waits, so nothing is completed.

*Initialize* (`spinup-bootstrap initialize`) runs once per instance: an on-disk marker,
written only after it succeeded, makes it a no-op afterwards. While a step runs the agent
records a heartbeat every minute (`heartbeat_s`) so that the hook does not time out; then it
completes the action with CONTINUE, or ABANDON when a step failed or the backend did not
become ready in time (the group then replaces the instance). A completion nobody waits for
(a reboot while in service) is logged and ignored.

`plan` is pure; `execute` runs a plan over two small ports (`Steps`, `LifecycleActions`)
whose adapters are `lifecycle_steps.py` (commands, readiness, marker) and `launch_hook.py`
(Auto Scaling).
Runs on the host's system Python (3.9 on Amazon Linux 2023, python3-boto3) before any release is
installed: standard library + boto3 only, as `python3 -m gpu_host.bootstrap.lifecycle` with
the agent's copy of this package on PYTHONPATH (`bootstrap.sh install_agent`).
"""

from __future__ import annotations

import enum
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from gpu_host.bootstrap.imds import DEFAULT_URL, Imds, ImdsError

log = logging.getLogger("spinup.lifecycle")

IN_SERVICE: Final = "InService"
WARMED_PREFIX: Final = "Warmed:"
BEING_REMOVED: Final = frozenset({"Terminated", "Warmed:Terminated"})


class Step(enum.Enum):
    INITIALIZE = "initialize"
    START = "start"
    AWAIT_READY = "await-ready"


class Result(enum.Enum):
    """The lifecycle action results (CompleteLifecycleAction's LifecycleActionResult)."""

    CONTINUE = "CONTINUE"
    ABANDON = "ABANDON"


_SERVE: Final = (Step.START, Step.AWAIT_READY)


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    completes: bool
    """Whether a launch hook waits for this boot's answer."""
    reason: str


def plan(target_state: str | None, *, initialized: bool) -> Plan:
    """What this boot does, from the Auto Scaling target state and the initialized marker."""
    prepare: tuple[Step, ...] = () if initialized else (Step.INITIALIZE,)
    if target_state is None:
        return Plan(
            prepare + _SERVE, completes=False, reason="in no Auto Scaling group: serve standalone"
        )
    if target_state in BEING_REMOVED:
        return Plan((), completes=False, reason=f"{target_state}: the group is removing it")
    if target_state.startswith(WARMED_PREFIX):
        return Plan(
            prepare,
            completes=True,
            reason=f"{target_state}: entering the warm pool; initialize, then the group stops it",
        )
    if target_state == IN_SERVICE:
        return Plan(prepare + _SERVE, completes=True, reason="InService: start and report ready")
    return Plan(
        prepare + _SERVE, completes=False, reason=f"{target_state}: no launch hook waits; serve"
    )


Pulse = Callable[[], None]
"""Called by a step whenever it polls: the heartbeat, throttled."""


class Steps(Protocol):
    """The machine's side of each step; each returns whether it succeeded."""

    def initialized(self) -> bool:
        """Whether initialization already succeeded on this instance (the marker)."""
        ...

    def initialize(self, pulse: Pulse) -> bool: ...

    def start(self, pulse: Pulse) -> bool: ...

    def await_ready(self, pulse: Pulse) -> bool: ...


class LifecycleActions(Protocol):
    """The launch hook's pending action for this instance (`launch_hook.LaunchHook`)."""

    def heartbeat(self) -> None: ...

    def complete(self, result: Result) -> None: ...


class Heartbeat:
    """A pulse that calls `send` at most every `every_s` seconds (the first one `every_s`
    after it was made: the action has just begun)."""

    def __init__(
        self, send: Callable[[], None], *, every_s: float, clock: Callable[[], float]
    ) -> None:
        self._send = send
        self._every_s = every_s
        self._clock = clock
        self._last = clock()

    def __call__(self) -> None:
        now = self._clock()
        if now - self._last >= self._every_s:
            self._last = now
            self._send()


def execute(
    the_plan: Plan,
    steps: Steps,
    actions: LifecycleActions | None,
    *,
    heartbeat_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Result:
    """Run the plan's steps in order, heartbeats while they run; complete the action when one
    waits. The first failed step (or exception) ends the run with ABANDON."""
    pulse: Pulse = (
        Heartbeat(actions.heartbeat, every_s=heartbeat_s, clock=clock)
        if actions is not None and the_plan.completes
        else _no_pulse
    )
    handlers: dict[Step, Callable[[Pulse], bool]] = {
        Step.INITIALIZE: steps.initialize,
        Step.START: steps.start,
        Step.AWAIT_READY: steps.await_ready,
    }
    result = Result.CONTINUE
    for step in the_plan.steps:
        log.info("step %s", step.value)
        try:
            succeeded = handlers[step](pulse)
        except Exception:  # a bug or a broken host must still answer the hook
            log.exception("step %s raised", step.value)
            succeeded = False
        if not succeeded:
            log.error("step %s failed", step.value)
            result = Result.ABANDON
            break
    if the_plan.completes and actions is not None:
        log.info("completing the lifecycle action: %s", result.value)
        actions.complete(result)
    return result


def _no_pulse() -> None:
    return None


# --- settings and wiring -------------------------------------------------------------------


@dataclass(frozen=True)
class LifecycleSettings:
    """Read once from the environment (/etc/spinup/bootstrap.env and the unit)."""

    ssm_prefix: str
    region: str
    marker: Path = Path("/var/lib/spinup/initialized")
    imds_url: str = DEFAULT_URL
    heartbeat_s: float = 60.0
    """Well under any sensible hook heartbeat timeout (the hook's default is one hour)."""
    initialize_timeout_s: float = 7200.0
    ready_timeout_s: float = 1200.0
    """As the control plane's boot grace: a host not ready by then is replaced."""
    ready_url: str = "http://127.0.0.1:8080/health/ready"
    state_wait_s: float = 30.0
    """How long an absent target state is asked again before the host counts as standalone."""
    imds_wait_s: float = 120.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LifecycleSettings:
        def number(name: str, default: float) -> float:
            raw = env.get(name, "")
            if not raw:
                return default
            value = float(raw)
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {raw!r}")
            return value

        defaults = cls(ssm_prefix="", region="")
        return cls(
            ssm_prefix=env.get("SPINUP_SSM_PREFIX", ""),
            region=env.get("SPINUP_AWS_REGION") or env.get("AWS_REGION", ""),
            marker=Path(env.get("SPINUP_LIFECYCLE_MARKER") or defaults.marker),
            imds_url=env.get("SPINUP_IMDS_URL") or defaults.imds_url,
            heartbeat_s=number("SPINUP_LIFECYCLE_HEARTBEAT_S", defaults.heartbeat_s),
            initialize_timeout_s=number(
                "SPINUP_LIFECYCLE_INITIALIZE_TIMEOUT_S", defaults.initialize_timeout_s
            ),
            ready_timeout_s=number("SPINUP_LIFECYCLE_READY_TIMEOUT_S", defaults.ready_timeout_s),
            ready_url=env.get("SPINUP_LIFECYCLE_READY_URL") or defaults.ready_url,
            state_wait_s=number("SPINUP_LIFECYCLE_STATE_WAIT_S", defaults.state_wait_s),
            imds_wait_s=number("SPINUP_LIFECYCLE_IMDS_WAIT_S", defaults.imds_wait_s),
        )


def read_identity(
    imds: Imds,
    *,
    imds_wait_s: float,
    state_wait_s: float,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], object] = time.sleep,
) -> tuple[str, str | None]:
    """This instance's id and target lifecycle state. The metadata service is asked again
    while it does not answer (early boot) for up to `imds_wait_s`; an absent target state
    for up to `state_wait_s` (a group instance might not have it at the very first look),
    then the instance counts as one in no group."""
    started = clock()
    while True:
        try:
            instance_id = imds.instance_id()
            state = imds.target_lifecycle_state()
        except ImdsError as exc:
            if clock() - started >= imds_wait_s:
                raise
            log.info("instance metadata not answering yet: %s", exc)
        else:
            if state is not None or clock() - started >= state_wait_s:
                return instance_id, state
        pause(1.0)


def run(
    settings: LifecycleSettings,
    *,
    imds: Imds,
    steps: Steps,
    actions_for: Callable[[str], LifecycleActions],
) -> int:
    """One boot's answer: identity, plan, steps, completion. 0 when it ended with CONTINUE."""
    try:
        instance_id, state = read_identity(
            imds, imds_wait_s=settings.imds_wait_s, state_wait_s=settings.state_wait_s
        )
    except ImdsError as exc:
        log.error("no instance metadata: %s", exc)
        return 1
    the_plan = plan(state, initialized=steps.initialized())
    log.info("instance %s, target %s: %s", instance_id, state, the_plan.reason)
    actions = None
    if the_plan.completes:
        try:
            actions = actions_for(instance_id)
        except Exception as exc:  # any reason (names missing, AWS unreachable): one outcome
            # Without the group's names nothing can be completed; the hook's timeout then
            # applies its default result (ABANDON) and the group replaces this instance.
            log.error("cannot answer the launch hook: %s", exc)
            return 1
    result = execute(the_plan, steps, actions, heartbeat_s=settings.heartbeat_s)
    return 0 if result is Result.CONTINUE else 1


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Imported here: the adapters (boto3 among them) are the edges; `plan` and `execute` are
    # usable without them.
    from gpu_host.bootstrap.launch_hook import launch_hook
    from gpu_host.bootstrap.lifecycle_steps import HostSteps

    settings = LifecycleSettings.from_env(os.environ)
    return run(
        settings,
        imds=Imds(settings.imds_url),
        steps=HostSteps.for_host(settings),
        actions_for=lambda instance_id: launch_hook(settings, instance_id),
    )


if __name__ == "__main__":
    sys.exit(main())
