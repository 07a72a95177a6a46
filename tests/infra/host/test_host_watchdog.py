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
    Lookup,
    Observation,
    Policy,
    State,
    WatchdogSettings,
    leave_fleet,
    load_state,
    look_up_host_record,
    parse_counter,
    save_state,
    step,
)
from lambdas.domain.host_record import host_key
from lambdas.settings import Settings as ControlSettings
from tests.infra.host.fakes import INSTANCE_ID

# Minutes, to read the tables: the control plane's longest timeout 20, margin 15,
# unreachable 15, unknown 10.
POLICY = Policy(longest_timeout_s=1200, margin_s=900, unreachable_s=900, unknown_s=600)
BOOT = 1_000_000.0
FOUND, MISSING, GONE = Lookup.FOUND, Lookup.MISSING, Lookup.UNREACHABLE


def _seen(
    minutes: float,
    *,
    frames: float | None = 0,
    record: Lookup = FOUND,
    reachable: bool | None = None,
    boot: str = "boot-1",
) -> Observation:
    if reachable is not None:
        record = FOUND if reachable else GONE
    return Observation(
        now=BOOT + minutes * 60,
        boot_id=boot,
        boot_at=BOOT,
        frames_inferred=frames,
        host_record=record,
    )


def _run(observations: list[Observation]) -> list[bool]:
    state: State | None = None
    decisions = []
    for seen in observations:
        verdict = step(state, seen, POLICY)
        state = verdict.state
        decisions.append(verdict.power_off)
    return decisions


def _last(observations: list[Observation]) -> tuple[bool, str]:
    state: State | None = None
    for seen in observations:
        verdict = step(state, seen, POLICY)
        state = verdict.state
    return verdict.power_off, verdict.reason


# Each case: what the watchdog sees minute by minute (frames counter, host record lookup)
# and whether the last look takes the host out, with a word of its reason.
_IDLE = 0
_CASES = [
    pytest.param(
        [(m, _IDLE, FOUND) for m in (1, 10, 20, 34)], False, "answered", id="idle 34 min, known"
    ),
    pytest.param(
        [(m, _IDLE, FOUND) for m in (1, 10, 20, 35)],
        True,
        "longest timeout",
        id="idle past the longest timeout + margin: out, whatever the control plane says",
    ),
    pytest.param(
        [(1, 0, FOUND), (30, 5, FOUND), (64, 5, FOUND)],
        False,
        "answered",
        id="a frame at minute 30 restarts the idle clock",
    ),
    pytest.param(
        [(1, 0, FOUND), (30, 5, FOUND), (65, 5, FOUND)],
        True,
        "longest timeout",
        id="35 min after the last frame: out",
    ),
    pytest.param(
        [(m, m * 10, FOUND) for m in range(1, 600, 7)],
        False,
        "active",
        id="busy for hours, known: stays",
    ),
    pytest.param(
        [(m, m * 10, GONE) for m in range(1, 600, 7)],
        False,
        "active",
        id="busy, control plane unreachable: stays",
    ),
    pytest.param(
        [(1, 0, GONE), (19, 0, GONE)],
        False,
        "active",
        id="idle 19 min, unreachable: under the longest timeout, stays",
    ),
    pytest.param(
        [(1, 0, GONE), (20, 0, GONE)],
        True,
        "unreachable",
        id="idle 20 min, unreachable since boot: out",
    ),
    pytest.param(
        [(1, 0, FOUND), (10, 0, FOUND), (21, 0, GONE), (24, 0, GONE)],
        False,
        "answered",
        id="idle, unreachable only since minute 10: the control plane decides a while",
    ),
    pytest.param(
        [(1, 0, FOUND), (10, 0, FOUND), (21, 0, GONE), (25, 0, GONE)],
        True,
        "unreachable",
        id="idle, unreachable for 15 min: out",
    ),
    pytest.param(
        [(m, m * 10, MISSING) for m in (2, 5, 9)],
        False,
        "active",
        id="no record for 9 min after boot: the control plane may not have seen it yet",
    ),
    pytest.param(
        [(m, m * 10, MISSING) for m in (2, 5, 10)],
        True,
        "no host record",
        id="no record for 10 min: out, even when busy",
    ),
    pytest.param(
        [(2, 0, FOUND), (8, 0, MISSING), (11, 0, MISSING)],
        False,
        "active",
        id="record last seen at minute 2, missing at 11: 9 min unknown, stays",
    ),
    pytest.param(
        [(2, 0, FOUND), (8, 0, FOUND), (9, 0, MISSING), (18, 0, MISSING)],
        True,
        "no host record",
        id="record last seen at minute 8, missing 10 min later: out",
    ),
    pytest.param(
        [(2, 0, MISSING), (8, 0, GONE), (11, 0, GONE)],
        False,
        "active",
        id="unreachable is no evidence of a missing record",
    ),
]


@pytest.mark.parametrize(("looks", "out", "why"), _CASES)
def test_decision(looks: list[tuple[float, float, Lookup]], out: bool, why: str) -> None:
    power_off, reason = _last([_seen(m, frames=f, record=r) for m, f, r in looks])
    assert power_off is out, reason
    assert why in reason


def test_it_never_takes_out_a_host_the_control_plane_keeps_busy() -> None:
    """Given frames every few minutes and a known record for a day, never out."""
    assert not any(_run([_seen(m, frames=m, record=FOUND) for m in range(0, 1440, 3)]))


def test_backend_restart_counts_its_new_frames_as_activity() -> None:
    state = step(None, _seen(1, frames=500), POLICY).state
    after_restart = step(state, _seen(30, frames=3, reachable=False), POLICY)
    assert after_restart.state.last_activity_at == _seen(30).now
    assert after_restart.state.frames_baseline == 3
    assert not after_restart.power_off


def test_backend_down_is_not_activity() -> None:
    state = step(None, _seen(1, frames=10), POLICY).state
    later = step(state, _seen(36, frames=None), POLICY)
    assert later.state.frames_baseline == 10
    assert later.power_off


def test_a_new_boot_starts_over() -> None:
    """Given an old state from before a reboot, then the clocks start at the new boot."""
    old = State(
        boot_id="boot-0", frames_baseline=9, last_activity_at=0, control_seen_at=0, known_at=0
    )
    verdict = step(old, _seen(5, reachable=False, boot="boot-1"), POLICY)
    assert verdict.state.boot_id == "boot-1"
    assert verdict.state.last_activity_at == BOOT
    assert verdict.state.known_at == _seen(5).now  # unreachable: no evidence it is unknown
    assert not verdict.power_off


def test_the_policy_takes_the_longest_control_plane_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "SPINUP_TABLE_NAME": "spinup-test",
        "AWS_REGION": "us-east-1",
        "SPINUP_HOST_ID": INSTANCE_ID,
        "SPINUP_IDLE_AFTER_DISCONNECT_S": "300",
        "SPINUP_IDLE_WHILE_CONNECTED_S": "2400",
        "SPINUP_WATCHDOG_MARGIN_S": "60",
    }.items():
        monkeypatch.setenv(name, value)
    policy = Policy.from_settings(WatchdogSettings())
    assert policy.longest_timeout_s == 2400
    assert policy.margin_s == 60


def test_without_published_timeouts_it_uses_the_control_planes_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPINUP_TABLE_NAME", "spinup-test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("SPINUP_HOST_ID", INSTANCE_ID)
    defaults = ControlSettings.model_fields
    policy = Policy.from_settings(WatchdogSettings())
    assert policy.longest_timeout_s == max(
        defaults[name].default
        for name in ("idle_after_disconnect_s", "idle_while_connected_s", "boot_grace_s")
    )


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
    state = State(
        boot_id="b", frames_baseline=None, last_activity_at=1.5, control_seen_at=2.5, known_at=3
    )
    save_state(path, state)
    assert load_state(path) == state
    path.write_text("{not json")
    assert load_state(path) is None
    path.write_text('{"unexpected": 1}')
    assert load_state(path) is None


def test_look_up_host_record_reads_the_table(aws_env: str) -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="spinup-test",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def look(table: str = "spinup-test") -> Lookup:
        return look_up_host_record(table_name=table, host_id=INSTANCE_ID, region="us-east-1")

    assert look() is MISSING
    dynamodb.put_item(TableName="spinup-test", Item={"pk": {"S": host_key(INSTANCE_ID)}})
    assert look() is FOUND
    assert look("no-such-table") is GONE


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
