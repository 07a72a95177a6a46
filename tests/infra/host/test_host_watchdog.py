"""The on-host watchdog: the pure decision over a sequence of observations, and its adapters
against real parts (a Prometheus registry's output, a moto DynamoDB)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from prometheus_client import CollectorRegistry, Counter, generate_latest
from pydantic import ValidationError

from gpu_host.bootstrap.watchdog import (
    Observation,
    Policy,
    State,
    WatchdogSettings,
    control_plane_reachable,
    leave_fleet,
    load_state,
    parse_counter,
    save_state,
    step,
)
from tests.infra.host.fakes import INSTANCE_ID

POLICY = Policy(idle_s=3600, unreachable_s=900)
BOOT = 1_000_000.0


def _seen(
    minutes: float, *, frames: float | None = 0, reachable: bool = True, boot: str = "boot-1"
) -> Observation:
    return Observation(
        now=BOOT + minutes * 60,
        boot_id=boot,
        boot_at=BOOT,
        frames_inferred=frames,
        control_plane_reachable=reachable,
    )


def _run(observations: list[Observation]) -> list[bool]:
    state: State | None = None
    decisions = []
    for seen in observations:
        verdict = step(state, seen, POLICY)
        state = verdict.state
        decisions.append(verdict.power_off)
    return decisions


def test_idle_but_control_plane_answers_stays_up() -> None:
    """Given no frames for hours while DynamoDB answers, then the watchdog defers to the
    control plane (a user's keep-alive is only visible there)."""
    assert _run([_seen(m, reachable=True) for m in range(0, 300, 5)]) == [False] * 60


def test_busy_but_control_plane_unreachable_stays_up() -> None:
    frames = [_seen(m, frames=m * 100, reachable=False) for m in range(0, 300, 5)]
    assert not any(_run(frames))


def test_idle_and_unreachable_powers_off_once_both_limits_pass() -> None:
    """Given no frames since boot and no control plane at all, then power-off comes at the
    idle limit (60 min), not before."""
    decisions = _run([_seen(m, reachable=False) for m in (1, 30, 59, 61)])
    assert decisions == [False, False, False, True]


def test_unreachable_limit_counts_from_the_last_answer() -> None:
    """Given idle for long, the control plane answering until minute 100, then the
    power-off waits until 15 minutes after that last answer."""
    seen = [_seen(m, reachable=m <= 100) for m in (1, 50, 100, 105, 114, 116)]
    assert _run(seen) == [False, False, False, False, False, True]


def test_a_frame_resets_the_idle_clock() -> None:
    seen = [
        _seen(1, frames=0, reachable=False),
        _seen(50, frames=10, reachable=False),  # activity at minute 50
        _seen(100, frames=10, reachable=False),
        _seen(111, frames=10, reachable=False),
    ]
    assert _run(seen) == [False, False, False, True]


def test_backend_restart_counts_its_new_frames_as_activity() -> None:
    state = step(None, _seen(1, frames=500), POLICY).state
    after_restart = step(state, _seen(70, frames=3, reachable=False), POLICY)
    assert after_restart.state.last_activity_at == _seen(70).now
    assert after_restart.state.frames_baseline == 3
    assert not after_restart.power_off


def test_backend_down_is_not_activity() -> None:
    state = step(None, _seen(1, frames=10), POLICY).state
    later = step(state, _seen(70, frames=None, reachable=False), POLICY)
    assert later.state.frames_baseline == 10
    assert later.power_off


def test_a_new_boot_starts_over() -> None:
    """Given an old state from before a reboot, then the clocks start at the new boot."""
    old = State(boot_id="boot-0", frames_baseline=9, last_activity_at=0, control_seen_at=0)
    verdict = step(old, _seen(5, reachable=False, boot="boot-1"), POLICY)
    assert verdict.state.boot_id == "boot-1"
    assert verdict.state.last_activity_at == BOOT
    assert not verdict.power_off


def test_verdict_explains_itself() -> None:
    verdict = step(None, _seen(61, reachable=False), POLICY)
    assert verdict.power_off
    assert "unreachable" in verdict.reason


def test_counter_is_summed_over_labels_from_real_exposition() -> None:
    registry = CollectorRegistry()
    frames = Counter("spinup_frames_inferred", "Frames", ["model"], registry=registry)
    frames.labels(model="detect").inc(3)
    frames.labels(model="pose").inc(4)
    text = generate_latest(registry).decode()
    assert parse_counter(text, "spinup_frames_inferred_total") == 7
    assert parse_counter(text, "spinup_missing_total") == 0


def test_state_round_trips_and_tolerates_garbage(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert load_state(path) is None
    state = State(boot_id="b", frames_baseline=None, last_activity_at=1.5, control_seen_at=2.5)
    save_state(path, state)
    assert load_state(path) == state
    path.write_text("{not json")
    assert load_state(path) is None
    path.write_text('{"unexpected": 1}')
    assert load_state(path) is None


def test_control_plane_reachable_reads_the_table(aws_env: str) -> None:
    boto3.client("dynamodb").create_table(
        TableName="spinup-test",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert control_plane_reachable(
        table_name="spinup-test", host_id=INSTANCE_ID, region="us-east-1"
    )
    assert not control_plane_reachable(
        table_name="no-such-table", host_id=INSTANCE_ID, region="us-east-1"
    )


def test_the_watchdog_reads_its_own_instance_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """host.env carries this instance's id (render_config, from instance metadata)."""
    monkeypatch.setenv("SPINUP_TABLE_NAME", "spinup-test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("SPINUP_HOST_ID", INSTANCE_ID)
    assert WatchdogSettings().host_id == INSTANCE_ID


@pytest.mark.parametrize("host_id", [None, "gpu-0"])
def test_without_an_instance_id_the_watchdog_does_not_guess(
    monkeypatch: pytest.MonkeyPatch, host_id: str | None
) -> None:
    monkeypatch.setenv("SPINUP_TABLE_NAME", "spinup-test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    if host_id is not None:
        monkeypatch.setenv("SPINUP_HOST_ID", host_id)
    with pytest.raises(ValidationError, match="host_id"):
        WatchdogSettings()


def test_observation_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _seen(1).now = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("answer", "left"),
    [
        pytest.param(None, True, id="in a group: leaves it, the desired capacity lowered"),
        pytest.param("ValidationError", False, id="in no group: power off instead"),
        pytest.param("AccessDenied", False, id="refused: power off instead"),
    ],
)
def test_the_watchdog_leaves_its_group_so_nothing_replaces_it(
    answer: str | None, left: bool
) -> None:
    client = boto3.client(
        "autoscaling", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    expected = {"InstanceId": INSTANCE_ID, "ShouldDecrementDesiredCapacity": True}
    with Stubber(client) as stub:
        if answer is None:
            stub.add_response(
                "terminate_instance_in_auto_scaling_group", {"Activity": _ACTIVITY}, expected
            )
        else:
            stub.add_client_error(
                "terminate_instance_in_auto_scaling_group", answer, expected_params=expected
            )
        assert leave_fleet(host_id=INSTANCE_ID, region="us-east-1", client=client) is left
        stub.assert_no_pending_responses()


_ACTIVITY = {
    "ActivityId": "a-1",
    "AutoScalingGroupName": "spinup-gpu-fleet",
    "Cause": "watchdog",
    "StartTime": "2026-11-28T00:00:00Z",
    "StatusCode": "InProgress",
}
