"""The launch hook's adapter: the Auto Scaling calls it makes (checked against botocore's
service model by a Stubber: moto has no lifecycle actions) and the SSM names it reads (moto).

https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RecordLifecycleActionHeartbeat.html
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from gpu_host.bootstrap import parameters
from gpu_host.bootstrap.launch_hook import LaunchHook, LaunchHookError, hook_names, launch_hook
from gpu_host.bootstrap.lifecycle import LifecycleSettings, Result
from tests.infra.host.fakes import INSTANCE_ID

GROUP, HOOK, PREFIX = "spinup-gpu-hosts", "spinup-launch", "/spinup/hosts"
ACTION = {"LifecycleHookName": HOOK, "AutoScalingGroupName": GROUP, "InstanceId": INSTANCE_ID}


@pytest.fixture
def stubbed() -> Iterator[tuple[LaunchHook, Stubber]]:
    client = boto3.client(
        "autoscaling",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield (
            LaunchHook(client, group_name=GROUP, hook_name=HOOK, instance_id=INSTANCE_ID),
            stubber,
        )
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize("result", [Result.CONTINUE, Result.ABANDON])
def test_complete_names_this_instance_and_the_result(
    stubbed: tuple[LaunchHook, Stubber], result: Result
) -> None:
    hook, stubber = stubbed
    stubber.add_response(
        "complete_lifecycle_action", {}, {**ACTION, "LifecycleActionResult": result.value}
    )
    hook.complete(result)


def test_heartbeat_names_this_instance(stubbed: tuple[LaunchHook, Stubber]) -> None:
    hook, stubber = stubbed
    stubber.add_response("record_lifecycle_action_heartbeat", {}, ACTION)
    hook.heartbeat()


def test_a_failed_heartbeat_is_not_fatal(stubbed: tuple[LaunchHook, Stubber]) -> None:
    hook, stubber = stubbed
    stubber.add_client_error(
        "record_lifecycle_action_heartbeat", service_error_code="Throttling", http_status_code=400
    )
    hook.heartbeat()


def test_completing_when_no_action_waits_is_ignored(stubbed: tuple[LaunchHook, Stubber]) -> None:
    """A reboot while in service: the hook is long done, AWS answers ValidationError."""
    hook, stubber = stubbed
    stubber.add_client_error(
        "complete_lifecycle_action",
        service_error_code="ValidationError",
        service_message=f"No active Lifecycle Action found with instance ID {INSTANCE_ID}",
        http_status_code=400,
    )
    hook.complete(Result.CONTINUE)


def test_other_completion_errors_are_raised(stubbed: tuple[LaunchHook, Stubber]) -> None:
    hook, stubber = stubbed
    stubber.add_client_error(
        "complete_lifecycle_action", service_error_code="AccessDenied", http_status_code=403
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        hook.complete(Result.CONTINUE)


def _publish(names: dict[str, str]) -> None:
    ssm = boto3.client("ssm")
    for name, value in names.items():
        ssm.put_parameter(Name=parameters.parameter_name(PREFIX, name), Value=value, Type="String")


def test_names_come_from_the_parameters_the_app_publishes(aws_env: str) -> None:
    _publish({parameters.FLEET_GROUP_NAME: GROUP, parameters.FLEET_LAUNCH_HOOK_NAME: HOOK})
    assert hook_names(boto3.client("ssm"), PREFIX) == (GROUP, HOOK)
    settings = LifecycleSettings(ssm_prefix=PREFIX, region="us-east-1")
    assert isinstance(launch_hook(settings, INSTANCE_ID), LaunchHook)


def test_missing_names_are_reported(aws_env: str) -> None:
    _publish({parameters.FLEET_GROUP_NAME: GROUP})
    with pytest.raises(LaunchHookError, match="launch-hook-name"):
        hook_names(boto3.client("ssm"), PREFIX)


def test_no_prefix_no_hook() -> None:
    with pytest.raises(LaunchHookError, match="SPINUP_SSM_PREFIX"):
        launch_hook(LifecycleSettings(ssm_prefix="", region="us-east-1"), INSTANCE_ID)
