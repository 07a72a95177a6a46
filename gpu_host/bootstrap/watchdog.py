"""The on-host safety net: power off when idle for long *and* the control plane is unreachable.

The control plane returns an idle host to the warm pool within minutes. If it cannot
(reconcile broken, no route to DynamoDB), a GPU could run for days; this check, run every
minute by spinup-watchdog.timer, powers the machine off instead. (EC2 stops it; in the Auto
Scaling group a stopped in-service instance then fails its health check and is replaced
while the desired capacity stays.) While the control plane answers, the watchdog leaves
every decision to it: a user's "Keep running" is visible there, not here. It reads its own
host record, `host#<instance id>`.

Activity is what the control plane counts too: frames inferred (the backend's
`spinup_frames_inferred_total`), never connections or status polls. `step` is pure; the
adapters below it read the backend's metrics, DynamoDB, the clock and a small state file.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client.parser import text_string_to_metric_families
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpu_host.bootstrap.imds import INSTANCE_ID
from lambdas.domain.host_record import PARTITION_KEY, host_key

log = logging.getLogger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_AWS_TIMEOUTS = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2})


class WatchdogSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SPINUP_", frozen=True, extra="ignore", populate_by_name=True
    )

    table_name: str = Field(min_length=3)
    host_id: str = Field(pattern=INSTANCE_ID.pattern)
    """This instance's id (`SPINUP_HOST_ID`, rendered from instance metadata into host.env):
    the watchdog reads its own host record, `host#<instance id>`."""
    aws_region: str = Field(validation_alias=AliasChoices("SPINUP_AWS_REGION", "AWS_REGION"))
    watchdog_state_file: Path = Path("/var/lib/spinup-watchdog/state.json")
    watchdog_idle_s: float = Field(default=3600.0, gt=0)
    """No frame inferred for this long (since boot at the earliest)…"""
    watchdog_unreachable_s: float = Field(default=900.0, gt=0)
    """…and no answer from the control plane for this long: power off."""
    watchdog_metrics_url: str = "http://127.0.0.1:8080/metrics"
    watchdog_activity_metric: str = "spinup_frames_inferred_total"


@dataclass(frozen=True, kw_only=True)
class Policy:
    idle_s: float
    unreachable_s: float


@dataclass(frozen=True, kw_only=True)
class Observation:
    """One look at the machine. `frames_inferred` is None when the backend did not answer."""

    now: float
    boot_id: str
    boot_at: float
    frames_inferred: float | None
    control_plane_reachable: bool


@dataclass(frozen=True, kw_only=True)
class State:
    """What the watchdog remembers between runs (one boot)."""

    boot_id: str
    frames_baseline: float | None
    last_activity_at: float
    control_seen_at: float


@dataclass(frozen=True, kw_only=True)
class Verdict:
    state: State
    power_off: bool
    reason: str


def step(previous: State | None, seen: Observation, policy: Policy) -> Verdict:
    state = _advance(previous, seen)
    idle_for = seen.now - state.last_activity_at
    unreachable_for = seen.now - state.control_seen_at
    if idle_for < policy.idle_s:
        return Verdict(state=state, power_off=False, reason=f"active {idle_for:.0f} s ago")
    if unreachable_for < policy.unreachable_s:
        return Verdict(
            state=state,
            power_off=False,
            reason=f"idle {idle_for:.0f} s; the control plane answered {unreachable_for:.0f} s "
            "ago and decides",
        )
    return Verdict(
        state=state,
        power_off=True,
        reason=f"idle {idle_for:.0f} s and the control plane unreachable for "
        f"{unreachable_for:.0f} s",
    )


def _advance(previous: State | None, seen: Observation) -> State:
    if previous is None or previous.boot_id != seen.boot_id:
        # A new boot: counting starts now, and the boot itself is the last known activity.
        return State(
            boot_id=seen.boot_id,
            frames_baseline=seen.frames_inferred,
            last_activity_at=seen.boot_at,
            control_seen_at=seen.now if seen.control_plane_reachable else seen.boot_at,
        )
    frames, baseline = seen.frames_inferred, previous.frames_baseline
    if frames is None:  # backend down: no evidence either way; keep the baseline
        active, baseline_next = False, baseline
    elif baseline is None:
        active, baseline_next = False, frames
    elif frames < baseline:  # the backend restarted and its counter began again
        active, baseline_next = frames > 0, frames
    else:
        active, baseline_next = frames > baseline, frames
    return State(
        boot_id=seen.boot_id,
        frames_baseline=baseline_next,
        last_activity_at=seen.now if active else previous.last_activity_at,
        control_seen_at=seen.now if seen.control_plane_reachable else previous.control_seen_at,
    )


def parse_counter(metrics_text: str, sample_name: str) -> float:
    """Sum of every sample named `sample_name` (all label sets) in Prometheus text."""
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == sample_name:
                total += sample.value
    return total


def load_state(path: Path) -> State | None:
    try:
        return State(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:  # corrupt or from an older version: start over
        log.warning("ignoring unreadable watchdog state %s: %s", path, exc)
        return None


def save_state(path: Path, state: State) -> None:
    path.write_text(json.dumps(asdict(state)), encoding="utf-8")


def read_frames_inferred(url: str, sample_name: str) -> float | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return parse_counter(response.read().decode("utf-8"), sample_name)
    except OSError as exc:
        log.info("backend metrics unavailable: %s", exc)
        return None


def control_plane_reachable(*, table_name: str, host_id: str, region: str) -> bool:
    """Whether the host record can be read: DynamoDB answers and our credentials work."""
    client = boto3.session.Session(region_name=region).client("dynamodb", config=_AWS_TIMEOUTS)
    try:
        client.get_item(
            TableName=table_name,
            Key={PARTITION_KEY: {"S": host_key(host_id)}},
            ProjectionExpression=PARTITION_KEY,
        )
    except (BotoCoreError, ClientError) as exc:
        log.info("control plane unreachable: %s", exc)
        return False
    return True


def observe(settings: WatchdogSettings) -> Observation:
    now = time.time()
    return Observation(
        now=now,
        boot_id=BOOT_ID.read_text(encoding="ascii").strip(),
        boot_at=now - time.clock_gettime(time.CLOCK_BOOTTIME),
        frames_inferred=read_frames_inferred(
            settings.watchdog_metrics_url, settings.watchdog_activity_metric
        ),
        control_plane_reachable=control_plane_reachable(
            table_name=settings.table_name, host_id=settings.host_id, region=settings.aws_region
        ),
    )


def leave_fleet(*, host_id: str, region: str, client: object | None = None) -> bool:
    """Leave the Auto Scaling group for good, lowering its desired capacity (the group then
    terminates this instance and replaces nothing; the warm pool refills on its own).
    False when the instance is in no group or the call fails: the caller powers off.
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_TerminateInstanceInAutoScalingGroup.html
    """
    autoscaling: Any = client or boto3.session.Session(region_name=region).client(
        "autoscaling", config=_AWS_TIMEOUTS
    )
    try:
        autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=host_id, ShouldDecrementDesiredCapacity=True
        )
    except (BotoCoreError, ClientError) as exc:
        log.warning("could not leave the Auto Scaling group: %s", exc)
        return False
    return True


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = WatchdogSettings()
    policy = Policy(idle_s=settings.watchdog_idle_s, unreachable_s=settings.watchdog_unreachable_s)
    verdict = step(load_state(settings.watchdog_state_file), observe(settings), policy)
    save_state(settings.watchdog_state_file, verdict.state)
    if not verdict.power_off:
        log.info("staying up: %s", verdict.reason)
        return 0
    log.warning("taking the host out: %s", verdict.reason)
    if leave_fleet(host_id=settings.host_id, region=settings.aws_region):
        log.warning("left the Auto Scaling group; it terminates this instance")
        return 0
    subprocess.run(["/usr/bin/systemctl", "poweroff"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
