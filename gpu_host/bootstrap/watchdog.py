"""The on-host safety net: take the host out when the control plane cannot be trusted to.

The control plane returns an idle host to the warm pool within minutes. If it cannot
(reconcile broken, no route to DynamoDB, a host it lost track of), a GPU could run for days;
this check, run every minute by spinup-watchdog.timer, takes the host out instead (it leaves
its Auto Scaling group, the desired capacity lowered; failing that, it powers off). It does so
when any of these holds:

- *unknown*: the control plane answers but no host record knows this instance
  (`host#<instance id>` missing) for `unknown_s`: nothing would ever stop it;
- *idle past every timeout*: no frame inferred for longer than the control plane's longest
  timeout (`SPINUP_IDLE_AFTER_DISCONNECT_S`, `SPINUP_IDLE_WHILE_CONNECTED_S`,
  `SPINUP_BOOT_GRACE_S`) plus `margin_s`, whatever the control plane says: it should have
  stopped the host by then;
- *idle and alone*: idle past the longest timeout and the control plane unreachable for
  `unreachable_s`.

Activity is what the control plane counts too: frames inferred (the backend's
`spinup_frames_inferred_total`), never connections or status polls; idle is counted from the
boot at the earliest. `step` is pure; the adapters below it read the backend's metrics,
DynamoDB, the clock and a small state file.
"""

from __future__ import annotations

import enum
import json
import logging
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
from lambdas.settings import Settings as ControlSettings

log = logging.getLogger(__name__)

POWER_OFF_EXIT = 3
"""Out, but the group could not be left: spinup-watchdog.service powers the machine off (this
runs in a container, which cannot)."""
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_AWS_TIMEOUTS = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2})


def _control_default(name: str) -> float:
    """The control plane's own default (`lambdas.settings.Settings`): never restated here."""
    return float(ControlSettings.model_fields[name].default)


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
    idle_after_disconnect_s: float = Field(
        default=_control_default("idle_after_disconnect_s"), gt=0
    )
    idle_while_connected_s: float = Field(default=_control_default("idle_while_connected_s"), gt=0)
    boot_grace_s: float = Field(default=_control_default("boot_grace_s"), gt=0)
    """The control plane's timeouts (the same `SPINUP_*` settings, published for the host):
    the longest of them is when it should have stopped an idle host at the latest."""
    watchdog_margin_s: float = Field(default=900.0, ge=0)
    """Idle past the longest timeout plus this: take the host out, whatever the control plane
    says."""
    watchdog_unreachable_s: float = Field(default=900.0, gt=0)
    """Idle past the longest timeout and no answer from the control plane for this long."""
    watchdog_unknown_s: float = Field(default=600.0, gt=0)
    """No host record for this instance for this long while the control plane answers (it
    creates the record when it sees the instance; reconcile runs every minute)."""
    watchdog_metrics_url: str = "http://127.0.0.1:8080/metrics"
    watchdog_activity_metric: str = "spinup_frames_inferred_total"


@dataclass(frozen=True, kw_only=True)
class Policy:
    longest_timeout_s: float
    """The control plane's longest timeout: it stops an idle host by then."""
    margin_s: float
    unreachable_s: float
    unknown_s: float

    @classmethod
    def from_settings(cls, settings: WatchdogSettings) -> Policy:
        return cls(
            longest_timeout_s=max(
                settings.idle_after_disconnect_s,
                settings.idle_while_connected_s,
                settings.boot_grace_s,
            ),
            margin_s=settings.watchdog_margin_s,
            unreachable_s=settings.watchdog_unreachable_s,
            unknown_s=settings.watchdog_unknown_s,
        )


class Lookup(enum.Enum):
    """What reading this host's record (`host#<instance id>`) gave."""

    FOUND = "found"
    MISSING = "missing"
    """The control plane answered: no record knows this instance."""
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, kw_only=True)
class Observation:
    """One look at the machine. `frames_inferred` is None when the backend did not answer."""

    now: float
    boot_id: str
    boot_at: float
    frames_inferred: float | None
    host_record: Lookup


@dataclass(frozen=True, kw_only=True)
class State:
    """What the watchdog remembers between runs (one boot)."""

    boot_id: str
    frames_baseline: float | None
    last_activity_at: float
    control_seen_at: float
    """The last answer from the control plane (the boot, before the first)."""
    known_at: float
    """The last look that did not find the record missing (the boot, before the first)."""


@dataclass(frozen=True, kw_only=True)
class Verdict:
    state: State
    power_off: bool
    reason: str


def step(previous: State | None, seen: Observation, policy: Policy) -> Verdict:
    state = _advance(previous, seen)
    idle_for = seen.now - state.last_activity_at
    unreachable_for = seen.now - state.control_seen_at
    unknown_for = seen.now - state.known_at

    def out(reason: str) -> Verdict:
        return Verdict(state=state, power_off=True, reason=reason)

    if unknown_for >= policy.unknown_s:
        return out(f"no host record knows this instance (for {unknown_for:.0f} s)")
    limit = policy.longest_timeout_s + policy.margin_s
    if idle_for >= limit:
        return out(
            f"idle {idle_for:.0f} s, past the control plane's longest timeout "
            f"({policy.longest_timeout_s:.0f} s) plus {policy.margin_s:.0f} s"
        )
    if idle_for < policy.longest_timeout_s:
        return Verdict(state=state, power_off=False, reason=f"active {idle_for:.0f} s ago")
    if unreachable_for >= policy.unreachable_s:
        return out(
            f"idle {idle_for:.0f} s and the control plane unreachable for {unreachable_for:.0f} s"
        )
    return Verdict(
        state=state,
        power_off=False,
        reason=f"idle {idle_for:.0f} s; the control plane answered {unreachable_for:.0f} s "
        "ago and decides",
    )


def _advance(previous: State | None, seen: Observation) -> State:
    reachable = seen.host_record is not Lookup.UNREACHABLE
    known = seen.host_record is not Lookup.MISSING
    if previous is None or previous.boot_id != seen.boot_id:
        # A new boot: counting starts now, and the boot itself is the last known activity.
        return State(
            boot_id=seen.boot_id,
            frames_baseline=seen.frames_inferred,
            last_activity_at=seen.boot_at,
            control_seen_at=seen.now if reachable else seen.boot_at,
            known_at=seen.now if known else seen.boot_at,
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
        control_seen_at=seen.now if reachable else previous.control_seen_at,
        known_at=seen.now if known else previous.known_at,
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


def look_up_host_record(*, table_name: str, host_id: str, region: str) -> Lookup:
    """Whether this host's record exists; UNREACHABLE when DynamoDB does not answer or our
    credentials do not work (no evidence either way)."""
    client = boto3.session.Session(region_name=region).client("dynamodb", config=_AWS_TIMEOUTS)
    try:
        answer = client.get_item(
            TableName=table_name,
            Key={PARTITION_KEY: {"S": host_key(host_id)}},
            ProjectionExpression=PARTITION_KEY,
            ConsistentRead=True,
        )
    except (BotoCoreError, ClientError) as exc:
        log.info("control plane unreachable: %s", exc)
        return Lookup.UNREACHABLE
    return Lookup.FOUND if "Item" in answer else Lookup.MISSING


def observe(settings: WatchdogSettings) -> Observation:
    now = time.time()
    return Observation(
        now=now,
        boot_id=BOOT_ID.read_text(encoding="ascii").strip(),
        boot_at=now - time.clock_gettime(time.CLOCK_BOOTTIME),
        frames_inferred=read_frames_inferred(
            settings.watchdog_metrics_url, settings.watchdog_activity_metric
        ),
        host_record=look_up_host_record(
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
    policy = Policy.from_settings(settings)
    verdict = step(load_state(settings.watchdog_state_file), observe(settings), policy)
    save_state(settings.watchdog_state_file, verdict.state)
    if not verdict.power_off:
        log.info("staying up: %s", verdict.reason)
        return 0
    log.warning("taking the host out: %s", verdict.reason)
    if leave_fleet(host_id=settings.host_id, region=settings.aws_region):
        log.warning("left the Auto Scaling group; it terminates this instance")
        return 0
    log.warning("powering off instead (exit status %d)", POWER_OFF_EXIT)
    return POWER_OFF_EXIT


if __name__ == "__main__":
    sys.exit(main())
