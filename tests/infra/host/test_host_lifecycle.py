"""The launch-hook agent: the pure plan over target states, the run over its steps, and the
steps on this machine (real processes, a real HTTP readiness probe, the marker on disk).

AWS behaviour relied on (not runnable here): a launch hook pauses an instance at
`Warmed:Pending:Wait` (entering the warm pool) and at `Pending:Wait` (going into service),
only at the latter when the pool is empty; the target state is in instance metadata.
https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html
https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gpu_host.bootstrap.imds import Imds, ImdsError
from gpu_host.bootstrap.lifecycle import (
    Heartbeat,
    LifecycleSettings,
    Plan,
    Pulse,
    Result,
    Step,
    execute,
    plan,
    read_identity,
    run,
)
from gpu_host.bootstrap.lifecycle_steps import HostSteps, Marker, http_ready, run_command
from infra.local.ports import free_port
from tests.infra.host.fakes import INSTANCE_ID, FakeImds, ReadyServer, RecordingHook
from tests.support.waiting import eventually

INIT, START, READY = Step.INITIALIZE, Step.START, Step.AWAIT_READY


# --- plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "initialized", "steps", "completes"),
    [
        # Entering the warm pool: initialize once, then the group stops the instance.
        ("Warmed:Stopped", False, (INIT,), True),
        ("Warmed:Stopped", True, (), True),
        ("Warmed:Running", False, (INIT,), True),
        ("Warmed:Hibernated", True, (), True),
        # Going into service: from the pool (initialized) or straight from an empty pool.
        ("InService", True, (START, READY), True),
        ("InService", False, (INIT, START, READY), True),
        # Leaving: nothing to do, nothing waits.
        ("Terminated", False, (), False),
        ("Warmed:Terminated", True, (), False),
        # In no group (metadata 404), or parked by an operator: a standalone host.
        (None, False, (INIT, START, READY), False),
        (None, True, (START, READY), False),
        ("Standby", True, (START, READY), False),
        ("Detached", True, (START, READY), False),
    ],
)
def test_plan(
    state: str | None, initialized: bool, steps: tuple[Step, ...], completes: bool
) -> None:
    decided = plan(state, initialized=initialized)
    assert (decided.steps, decided.completes) == (steps, completes)
    assert decided.reason


# --- execute over fake steps -----------------------------------------------------------------


@dataclass
class FakeSteps:
    """Steps that succeed unless named in `failing`; each records itself and pulses."""

    failing: frozenset[Step] = frozenset()
    raising: frozenset[Step] = frozenset()
    ran: list[Step] = field(default_factory=list)
    done: bool = False

    def initialized(self) -> bool:
        return self.done

    def _step(self, step: Step, pulse: Pulse) -> bool:
        self.ran.append(step)
        pulse()
        if step in self.raising:
            raise RuntimeError("boom")
        return step not in self.failing

    def initialize(self, pulse: Pulse) -> bool:
        return self._step(INIT, pulse)

    def start(self, pulse: Pulse) -> bool:
        return self._step(START, pulse)

    def await_ready(self, pulse: Pulse) -> bool:
        return self._step(READY, pulse)


SERVE_FRESH = Plan((INIT, START, READY), completes=True, reason="test")


def test_every_step_then_continue() -> None:
    steps, hook = FakeSteps(), RecordingHook()
    assert execute(SERVE_FRESH, steps, hook, heartbeat_s=60) is Result.CONTINUE
    assert steps.ran == [INIT, START, READY]
    assert hook.completions == ["CONTINUE"]


@pytest.mark.parametrize("broken", [INIT, START, READY])
@pytest.mark.parametrize("how", ["fails", "raises"])
def test_a_failed_step_abandons_and_stops_there(broken: Step, how: str) -> None:
    bad = frozenset({broken})
    steps = FakeSteps(failing=bad) if how == "fails" else FakeSteps(raising=bad)
    hook = RecordingHook()
    assert execute(SERVE_FRESH, steps, hook, heartbeat_s=60) is Result.ABANDON
    assert steps.ran == list(SERVE_FRESH.steps[: SERVE_FRESH.steps.index(broken) + 1])
    assert hook.completions == ["ABANDON"]


def test_nothing_is_completed_when_no_hook_waits() -> None:
    hook = RecordingHook()
    standalone = Plan((START, READY), completes=False, reason="test")
    assert execute(standalone, FakeSteps(failing=frozenset({READY})), hook, heartbeat_s=0) is (
        Result.ABANDON
    )
    assert hook.calls == []


def test_heartbeat_is_throttled_to_its_interval() -> None:
    now = [100.0]
    sent: list[float] = []
    beat = Heartbeat(lambda: sent.append(now[0]), every_s=60, clock=lambda: now[0])
    for t in (100, 130, 159.9, 160, 161, 219, 220.5, 400):
        now[0] = t
        beat()
    assert sent == [160, 220.5, 400]


# --- the steps on this machine ---------------------------------------------------------------


def _python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def _counting_command(counter: Path, *, exit_code: int = 0) -> tuple[str, ...]:
    """A command that appends a line to `counter` (how often it ran) and exits."""
    return _python(
        f"import sys; open({str(counter)!r}, 'a').write('ran\\n'); sys.exit({exit_code})"
    )


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def _host_steps(tmp_path: Path, **changes: object) -> HostSteps:
    defaults: dict[str, object] = {
        "marker": Marker(tmp_path / "state" / "initialized"),
        "initialize_command": _python("pass"),
        "start_command": _python("pass"),
        "initialize_timeout_s": 30.0,
        "ready_timeout_s": 10.0,
        "ready_url": f"http://127.0.0.1:{free_port()}/health/ready",
        "poll_s": 0.02,
    }
    return HostSteps(**{**defaults, **changes})  # type: ignore[arg-type]


def test_initialize_runs_once_then_the_marker_makes_it_a_no_op(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    steps = _host_steps(tmp_path, initialize_command=_counting_command(counter))
    assert not steps.initialized()
    assert steps.initialize(lambda: None)
    assert steps.initialized()
    assert steps.initialize(lambda: None)
    assert _runs(counter) == 1
    assert plan("InService", initialized=steps.initialized()).steps == (START, READY)


@pytest.mark.parametrize("exit_code", [1, 2])
def test_a_failed_initialize_leaves_no_marker(tmp_path: Path, exit_code: int) -> None:
    counter = tmp_path / "runs"
    steps = _host_steps(
        tmp_path, initialize_command=_counting_command(counter, exit_code=exit_code)
    )
    assert not steps.initialize(lambda: None)
    assert not steps.initialized()
    assert not steps.initialize(lambda: None)  # tried again next time: nothing was marked
    assert _runs(counter) == 2


def test_an_initialize_that_outlives_its_bound_is_stopped(tmp_path: Path) -> None:
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    steps = _host_steps(tmp_path, initialize_command=("cat", str(fifo)), initialize_timeout_s=0.3)
    assert not steps.initialize(lambda: None)
    assert not steps.initialized()


def test_a_missing_command_is_a_failed_step(tmp_path: Path) -> None:
    assert not run_command((str(tmp_path / "no-such-program"),), timeout_s=5, pulse=lambda: None)


def test_heartbeats_while_initialize_runs_then_continue(tmp_path: Path) -> None:
    """Given initialization that runs until the test lets it finish, then heartbeats keep
    the hook waiting meanwhile, and CONTINUE follows once it succeeded."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    steps = _host_steps(tmp_path, initialize_command=("cat", str(gate)))
    hook = RecordingHook()
    outcome: list[Result] = []
    warm = plan("Warmed:Stopped", initialized=False)
    worker = threading.Thread(
        target=lambda: outcome.append(execute(warm, steps, hook, heartbeat_s=0.05))
    )
    worker.start()
    try:
        eventually(lambda: hook.heartbeats, lambda n: n >= 3, what="heartbeats while it runs")
        assert hook.completions == []
    finally:
        with gate.open("w"):  # `cat` reads end-of-file and exits 0
            pass
        worker.join(timeout=10)
    assert outcome == [Result.CONTINUE]
    assert hook.completions == ["CONTINUE"]
    assert hook.calls[-1] == "CONTINUE"
    assert steps.initialized()


def test_in_service_waits_for_ready_with_heartbeats(
    tmp_path: Path, backend_ready: ReadyServer
) -> None:
    steps = _host_steps(tmp_path, ready_url=backend_ready.url)
    hook = RecordingHook()
    outcome: list[Result] = []
    going_in = plan("InService", initialized=True)
    worker = threading.Thread(
        target=lambda: outcome.append(execute(going_in, steps, hook, heartbeat_s=0.05))
    )
    worker.start()
    try:
        eventually(lambda: backend_ready.probes, lambda n: n >= 2, what="probed, not ready")
        before = hook.heartbeats
        eventually(lambda: hook.heartbeats, lambda n: n > before, what="heartbeats meanwhile")
        assert hook.completions == []
    finally:
        backend_ready.ready.set()
        worker.join(timeout=10)
    assert outcome == [Result.CONTINUE]
    assert hook.completions == ["CONTINUE"]


def test_not_ready_in_time_abandons(tmp_path: Path, backend_ready: ReadyServer) -> None:
    steps = _host_steps(tmp_path, ready_url=backend_ready.url, ready_timeout_s=0.3)
    hook = RecordingHook()
    assert (
        execute(plan("InService", initialized=True), steps, hook, heartbeat_s=60) is Result.ABANDON
    )
    assert hook.completions == ["ABANDON"]


def test_a_start_that_fails_abandons_without_waiting_for_ready(
    tmp_path: Path, backend_ready: ReadyServer
) -> None:
    steps = _host_steps(tmp_path, start_command=_python("raise SystemExit(1)"))
    hook = RecordingHook()
    result = execute(plan("InService", initialized=True), steps, hook, heartbeat_s=60)
    assert result is Result.ABANDON
    assert backend_ready.probes == 0


# --- identity and the whole run -------------------------------------------------------------


def test_identity_waits_a_moment_for_an_absent_state_then_counts_as_standalone(
    imds: FakeImds,
) -> None:
    del imds.items["autoscaling/target-lifecycle-state"]
    now = [0.0]

    def pause(seconds: float) -> None:
        now[0] += seconds

    identity = read_identity(
        Imds(imds.url), imds_wait_s=60, state_wait_s=5, clock=lambda: now[0], pause=pause
    )
    assert identity == (INSTANCE_ID, None)
    assert now[0] == pytest.approx(5, abs=1)


def test_identity_gives_up_when_metadata_never_answers() -> None:
    now = [0.0]

    def pause(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(ImdsError):
        read_identity(
            Imds(f"http://127.0.0.1:{free_port()}", timeout_s=0.5),
            imds_wait_s=3,
            state_wait_s=1,
            clock=lambda: now[0],
            pause=pause,
        )


def _settings(imds: FakeImds, tmp_path: Path) -> LifecycleSettings:
    return LifecycleSettings.from_env(
        {
            "SPINUP_SSM_PREFIX": "/spinup/hosts",
            "AWS_REGION": "us-east-1",
            "SPINUP_IMDS_URL": imds.url,
            "SPINUP_LIFECYCLE_MARKER": str(tmp_path / "initialized"),
            "SPINUP_LIFECYCLE_STATE_WAIT_S": "0.1",
        }
    )


@pytest.mark.parametrize(
    ("state", "exit_code", "completions"),
    [
        ("Warmed:Stopped", 0, ["CONTINUE"]),
        ("InService", 0, ["CONTINUE"]),
        ("Warmed:Terminated", 0, []),
    ],
)
def test_run_answers_the_hook_for_this_instance(
    imds: FakeImds,
    tmp_path: Path,
    backend_ready: ReadyServer,
    state: str,
    exit_code: int,
    completions: list[str],
) -> None:
    imds.items["autoscaling/target-lifecycle-state"] = state
    backend_ready.ready.set()
    settings = _settings(imds, tmp_path)
    hook = RecordingHook()
    asked_for: list[str] = []

    def actions_for(instance_id: str) -> RecordingHook:
        asked_for.append(instance_id)
        return hook

    code = run(
        settings,
        imds=Imds(settings.imds_url),
        steps=_host_steps(tmp_path, ready_url=backend_ready.url),
        actions_for=actions_for,
    )
    assert code == exit_code
    assert hook.completions == completions
    assert asked_for == ([INSTANCE_ID] if completions else [])


def test_run_fails_when_the_hook_cannot_be_reached(imds: FakeImds, tmp_path: Path) -> None:
    """Names not published: nothing is initialized for a hook that cannot be completed; the
    hook's own timeout (default result ABANDON) then replaces the instance."""
    settings = _settings(imds, tmp_path)
    counter = tmp_path / "runs"

    def actions_for(instance_id: str) -> RecordingHook:
        raise LookupError("missing SSM parameters")

    code = run(
        settings,
        imds=Imds(settings.imds_url),
        steps=_host_steps(tmp_path, initialize_command=_counting_command(counter)),
        actions_for=actions_for,
    )
    assert code == 1
    assert _runs(counter) == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPINUP_LIFECYCLE_HEARTBEAT_S": "0"}, "must be positive"),
        ({"SPINUP_LIFECYCLE_READY_TIMEOUT_S": "-5"}, "must be positive"),
        ({"SPINUP_LIFECYCLE_HEARTBEAT_S": "soon"}, "could not convert"),
    ],
)
def test_settings_refuse_bad_numbers(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LifecycleSettings.from_env(env)


def test_settings_defaults_and_region_alias() -> None:
    settings = LifecycleSettings.from_env({"SPINUP_SSM_PREFIX": "/p", "AWS_REGION": "eu-west-1"})
    assert settings.region == "eu-west-1"
    assert settings.marker == Path("/var/lib/spinup/initialized")
    assert settings.ready_url == "http://127.0.0.1:8080/health/ready"
    assert settings.heartbeat_s < settings.ready_timeout_s


def test_readiness_never_goes_through_a_proxy(
    backend_ready: ReadyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert not http_ready(backend_ready.url)
    backend_ready.ready.set()
    assert http_ready(backend_ready.url)
