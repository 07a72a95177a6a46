"""The launch hook's pending action for this instance, through the Auto Scaling API.

`lifecycle.LifecycleActions` over boto3: RecordLifecycleActionHeartbeat and
CompleteLifecycleAction for (group, hook, instance id). The group and hook names are SSM
parameters under the hosts' prefix (`parameters.FLEET_GROUP_NAME`,
`parameters.FLEET_LAUNCH_HOOK_NAME`), written by the CDK app; the instance id comes from
instance metadata.
https://docs.aws.amazon.com/autoscaling/ec2/userguide/completing-lifecycle-hooks.html

A heartbeat that fails is logged, not fatal: the next one may pass, and the hook's own
timeout is the backstop. A completion that finds no action waiting (the instance rebooted
while in service, or the hook already timed out) is logged and ignored; AWS answers it with
a ValidationError "No active Lifecycle Action found with instance ID …".

Python 3.9 compatible, boto3 from the host's system Python (see `lifecycle.py`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from gpu_host.bootstrap import parameters

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ssm import SSMClient

    from gpu_host.bootstrap.lifecycle import LifecycleSettings, Result

log = logging.getLogger("spinup.lifecycle")

# Standard retry mode: throttling and transient errors are retried with backoff by botocore.
_AWS: Final = Config(
    connect_timeout=5, read_timeout=10, retries={"max_attempts": 6, "mode": "standard"}
)
_NO_ACTION: Final = "No active Lifecycle Action"


class LaunchHookError(Exception):
    """The hook cannot be answered: its names are not published or not readable."""


class LaunchHook:
    def __init__(
        self, autoscaling: AutoScalingClient, *, group_name: str, hook_name: str, instance_id: str
    ) -> None:
        self._autoscaling = autoscaling
        self._group = group_name
        self._hook = hook_name
        self._instance_id = instance_id

    def heartbeat(self) -> None:
        try:
            self._autoscaling.record_lifecycle_action_heartbeat(
                LifecycleHookName=self._hook,
                AutoScalingGroupName=self._group,
                InstanceId=self._instance_id,
            )
        except (BotoCoreError, ClientError) as exc:
            log.warning("lifecycle heartbeat failed: %s", exc)
        else:
            log.info("lifecycle heartbeat sent")

    def complete(self, result: Result) -> None:
        try:
            self._autoscaling.complete_lifecycle_action(
                LifecycleHookName=self._hook,
                AutoScalingGroupName=self._group,
                InstanceId=self._instance_id,
                LifecycleActionResult=result.value,
            )
        except ClientError as exc:
            if _NO_ACTION in str(exc):
                log.info("no lifecycle action waits for %s; nothing to complete", self._instance_id)
                return
            raise


def hook_names(ssm: SSMClient, prefix: str) -> tuple[str, str]:
    """(group name, hook name) from the SSM parameters under `prefix`."""
    group = parameters.parameter_name(prefix, parameters.FLEET_GROUP_NAME)
    hook = parameters.parameter_name(prefix, parameters.FLEET_LAUNCH_HOOK_NAME)
    try:
        answer = ssm.get_parameters(Names=[group, hook])
    except (BotoCoreError, ClientError) as exc:
        raise LaunchHookError(f"reading {group} and {hook}: {exc}") from exc
    found = {p["Name"]: p["Value"] for p in answer["Parameters"]}
    missing = [name for name in (group, hook) if not found.get(name)]
    if missing:
        raise LaunchHookError(f"missing SSM parameters: {', '.join(missing)}")
    return found[group], found[hook]


def launch_hook(settings: LifecycleSettings, instance_id: str) -> LaunchHook:
    if not settings.ssm_prefix or not settings.region:
        raise LaunchHookError("SPINUP_SSM_PREFIX and AWS_REGION must be set")
    session = boto3.session.Session(region_name=settings.region)
    group, hook = hook_names(session.client("ssm", config=_AWS), settings.ssm_prefix)
    return LaunchHook(
        session.client("autoscaling", config=_AWS),
        group_name=group,
        hook_name=hook,
        instance_id=instance_id,
    )
