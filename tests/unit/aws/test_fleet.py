"""`AutoScalingFleet`: the group, its instances and EC2's view of them, read through
`DescribeAutoScalingGroups`, `DescribeWarmPool`, `DescribeInstances` and
`DescribeScalingActivities`; and the three calls the control plane makes.

Against moto's Auto Scaling (groups launch and terminate moto EC2 instances) where it can;
moto keeps a warm pool's configuration only and never fails a scaling activity, so the warm
instances and a failed activity are stubbed (botocore Stubber) with the shapes AWS documents:
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeWarmPool.html and
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.aws.fleet import AutoScalingFleet
from lambdas.domain.fleet import GroupView

GROUP = "spinup-gpu"
REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield (
            boto3.client("autoscaling", region_name=REGION),
            boto3.client("ec2", region_name=REGION),
        )


def make_group(autoscaling: Any, ec2: Any, desired: int) -> AutoScalingFleet:
    ec2.create_launch_template(
        LaunchTemplateName="spinup-gpu",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "g4dn.xlarge"},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        LaunchTemplate={"LaunchTemplateName": "spinup-gpu", "Version": "$Latest"},
        MinSize=0,
        MaxSize=3,
        DesiredCapacity=desired,
        AvailabilityZones=[f"{REGION}a"],
        NewInstancesProtectedFromScaleIn=True,
    )
    return AutoScalingFleet(autoscaling, ec2, GROUP)


def test_describe_reads_the_group_and_ec2s_view_of_each_instance(aws: tuple[Any, Any]) -> None:
    fleet = make_group(*aws, desired=2)
    view = fleet.describe()
    assert (view.name, view.desired_capacity, view.min_size, view.max_size) == (GROUP, 2, 0, 3)
    assert len(view.serving) == 2
    for instance in view.instances:
        assert instance.instance_id.startswith("i-")
        assert instance.lifecycle_state == "InService"
        assert instance.ec2_state == "running"
        assert instance.instance_type == "g4dn.xlarge"
        assert instance.zone == f"{REGION}a"
        assert instance.protected
        assert instance.launch_time is not None
        assert instance.running
    assert view.failures == ()


def test_an_empty_group(aws: tuple[Any, Any]) -> None:
    view = make_group(*aws, desired=0).describe()
    assert (view.desired_capacity, view.instances) == (0, ())


def test_a_group_that_does_not_exist_is_named(aws: tuple[Any, Any]) -> None:
    with pytest.raises(LookupError, match="no Auto Scaling group spinup-gpu"):
        AutoScalingFleet(*aws, GROUP).describe()


def test_the_desired_capacity_launches_and_returns_instances(aws: tuple[Any, Any]) -> None:
    fleet = make_group(*aws, desired=1)
    fleet.set_desired_capacity(3)
    assert len(fleet.describe().serving) == 3
    fleet.set_desired_capacity(1)
    assert fleet.describe().desired_capacity == 1


def test_protection_is_set_per_instance(aws: tuple[Any, Any]) -> None:
    fleet = make_group(*aws, desired=2)
    first, second = (i.instance_id for i in fleet.describe().instances)
    fleet.set_protection(first, protected=False)
    view = fleet.describe()
    assert [view.get(first).protected, view.get(second).protected] == [False, True]  # type: ignore[union-attr]


def test_a_replaced_instance_leaves_and_the_capacity_stays(aws: tuple[Any, Any]) -> None:
    fleet = make_group(*aws, desired=1)
    (old,) = fleet.describe().instances
    fleet.replace(old.instance_id)
    view = fleet.describe()
    assert view.desired_capacity == 1
    assert old.instance_id not in {i.instance_id for i in view.serving}


# --- what moto cannot do: warm instances and failed activities, stubbed -----------------------

STARTED = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


def stubbed_describe(
    warm_pool: dict[str, Any] | Exception, activities: list[dict[str, Any]]
) -> GroupView:
    autoscaling = boto3.client(
        "autoscaling", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    group = {
        "AutoScalingGroupName": GROUP,
        "MinSize": 0,
        "MaxSize": 2,
        "DesiredCapacity": 1,
        "DefaultCooldown": 300,
        "AvailabilityZones": [f"{REGION}a"],
        "HealthCheckType": "EC2",
        "CreatedTime": STARTED,
        "Instances": [
            {
                "InstanceId": "i-0aaaaaaaaaaaaaaa1",
                "InstanceType": "g4dn.xlarge",
                "AvailabilityZone": f"{REGION}a",
                "LifecycleState": "Pending:Wait",
                "HealthStatus": "Healthy",
                "ProtectedFromScaleIn": True,
            }
        ],
    }
    with Stubber(autoscaling) as asg_stub, Stubber(ec2) as ec2_stub:
        asg_stub.add_response(
            "describe_auto_scaling_groups",
            {"AutoScalingGroups": [group]},
            {"AutoScalingGroupNames": [GROUP]},
        )
        if isinstance(warm_pool, Exception):
            asg_stub.add_client_error("describe_warm_pool", str(warm_pool))
        else:
            asg_stub.add_response("describe_warm_pool", warm_pool, {"AutoScalingGroupName": GROUP})
        ec2_stub.add_response(
            "describe_instances",
            {
                "Reservations": [
                    {
                        "Instances": [
                            {
                                "InstanceId": "i-0aaaaaaaaaaaaaaa1",
                                "State": {"Code": 0, "Name": "pending"},
                                "LaunchTime": STARTED,
                                "PublicDnsName": "",
                            },
                            {
                                "InstanceId": "i-0bbbbbbbbbbbbbbb2",
                                "InstanceType": "g5.xlarge",
                                "State": {"Code": 80, "Name": "stopped"},
                                "LaunchTime": STARTED,
                            },
                        ]
                    }
                ]
            },
        )
        asg_stub.add_response(
            "describe_scaling_activities",
            {"Activities": activities},
            {"AutoScalingGroupName": GROUP, "MaxRecords": 10},
        )
        view = AutoScalingFleet(autoscaling, ec2, GROUP).describe()
        asg_stub.assert_no_pending_responses()
        ec2_stub.assert_no_pending_responses()
    return view


WARM_POOL = {
    "Instances": [
        {
            "InstanceId": "i-0bbbbbbbbbbbbbbb2",
            "AvailabilityZone": f"{REGION}a",
            "LifecycleState": "Warmed:Stopped",
            "HealthStatus": "Healthy",
            "ProtectedFromScaleIn": False,
        }
    ]
}


def activity(status: str, at: datetime, message: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "ActivityId": f"a-{status}-{at.timestamp()}",
        "AutoScalingGroupName": GROUP,
        "Cause": "a user request update of AutoScalingGroup constraints",
        "StartTime": at,
        "StatusCode": status,
        "Description": f"Launching a new EC2 instance ({status})",
    }
    if message:
        found["StatusMessage"] = message
    return found


def test_warm_instances_are_part_of_the_view() -> None:
    view = stubbed_describe(WARM_POOL, [])
    launching, pooled = view.instances
    assert (launching.lifecycle_state, launching.ec2_state, launching.serving) == (
        "Pending:Wait",
        "pending",
        True,
    )
    assert launching.launch_time == STARTED.timestamp()
    assert (pooled.lifecycle_state, pooled.ec2_state, pooled.warm) == (
        "Warmed:Stopped",
        "stopped",
        True,
    )
    assert pooled.instance_type == "g5.xlarge"
    assert not pooled.protected
    assert view.warm == (pooled,)


@pytest.mark.parametrize("error", ["ValidationError", "ResourceContention"])
def test_a_group_without_a_readable_warm_pool_has_no_warm_instances(error: str) -> None:
    view = stubbed_describe(Exception(error), [])
    assert [i.instance_id for i in view.instances] == ["i-0aaaaaaaaaaaaaaa1"]


def test_failed_scaling_activities_are_reported_newest_first() -> None:
    capacity = (
        "We currently do not have sufficient g4dn.xlarge capacity in the Availability Zone "
        "you requested (us-east-1a). Launching EC2 instance failed."
    )
    later = datetime(2027, 1, 15, 8, 5, tzinfo=UTC)
    view = stubbed_describe(
        WARM_POOL,
        [
            activity("Failed", later, capacity),
            activity("Successful", STARTED),
            activity("Cancelled", STARTED),
        ],
    )
    assert [(f.at, f.message) for f in view.failures] == [
        (later.timestamp(), capacity),
        (STARTED.timestamp(), "Launching a new EC2 instance (Cancelled)"),
    ]
