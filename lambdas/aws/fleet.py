"""The thin Auto Scaling adapter: the GPU fleet is one group; four calls, no decisions.

Hosts are found through the group (`DescribeAutoScalingGroups`, `DescribeWarmPool`), never by
an id wired in at deploy time. `infra.local.fleet.EmulatedFleet` implements the same
`FleetGateway` for the local mode (moto keeps a warm pool's configuration only).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from lambdas.aws.errors import error_code
from lambdas.domain.fleet import GroupInstance, GroupView, ScalingFailure

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client

SCALING_IN_PROGRESS = "ScalingActivityInProgress"
"""SetDesiredCapacity / SetInstanceProtection refused while the group is busy: retried by the
next reconcile, which converges the group on the fleet record's desired capacity."""

FAILURES_KEPT = 5


class FleetGateway(Protocol):
    """What the control plane asks of the fleet. Errors are botocore `ClientError`s."""

    def describe(self) -> GroupView: ...

    def set_desired_capacity(self, capacity: int) -> None: ...

    def set_protection(self, instance_id: str, *, protected: bool) -> None: ...

    def replace(self, instance_id: str) -> None:
        """Terminate one instance without lowering the desired capacity: the group launches
        another in its place (from the warm pool when it has one)."""
        ...


class AutoScalingFleet:
    def __init__(self, autoscaling: AutoScalingClient, ec2: EC2Client, group_name: str) -> None:
        self.autoscaling = autoscaling
        self.ec2 = ec2
        self.group_name = group_name

    def describe(self) -> GroupView:
        groups = self.autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.group_name]
        )["AutoScalingGroups"]
        if not groups:
            raise LookupError(f"no Auto Scaling group {self.group_name}")
        group = groups[0]
        members: list[dict[str, Any]] = [dict(i) for i in group.get("Instances", [])]
        members += self._warm_instances()
        ec2_view = self._ec2_view(m["InstanceId"] for m in members)
        instances = tuple(
            _instance(member, ec2_view.get(member["InstanceId"], {})) for member in members
        )
        return GroupView(
            name=self.group_name,
            desired_capacity=int(group["DesiredCapacity"]),
            min_size=int(group["MinSize"]),
            max_size=int(group["MaxSize"]),
            instances=instances,
            failures=self._failures(),
        )

    def set_desired_capacity(self, capacity: int) -> None:
        # HonorCooldown=False: the control plane decides when; a cooldown would only delay it.
        self.autoscaling.set_desired_capacity(
            AutoScalingGroupName=self.group_name, DesiredCapacity=capacity, HonorCooldown=False
        )

    def set_protection(self, instance_id: str, *, protected: bool) -> None:
        self.autoscaling.set_instance_protection(
            AutoScalingGroupName=self.group_name,
            InstanceIds=[instance_id],
            ProtectedFromScaleIn=protected,
        )

    def replace(self, instance_id: str) -> None:
        self.autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=False
        )

    def _warm_instances(self) -> list[dict[str, Any]]:
        try:
            answer = self.autoscaling.describe_warm_pool(AutoScalingGroupName=self.group_name)
        except ClientError as error:
            if error_code(error) in {"ValidationError", "ResourceContention"}:
                return []
            raise
        return [dict(i) for i in answer.get("Instances", [])]

    def _ec2_view(self, instance_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = sorted(set(instance_ids))
        if not ids:
            return {}
        try:
            answer = self.ec2.describe_instances(InstanceIds=ids)
        except ClientError as error:
            if error_code(error).startswith("InvalidInstanceID"):
                return {}  # one just launched or gone: the next reconcile reads it
            raise
        return {
            i["InstanceId"]: dict(i)
            for r in answer.get("Reservations", [])
            for i in r.get("Instances", [])
        }

    def _failures(self) -> tuple[ScalingFailure, ...]:
        answer = self.autoscaling.describe_scaling_activities(
            AutoScalingGroupName=self.group_name, MaxRecords=FAILURES_KEPT * 2
        )
        return tuple(
            ScalingFailure(
                at=activity["StartTime"].timestamp(),
                message=str(activity.get("StatusMessage") or activity.get("Description", "")),
            )
            for activity in answer.get("Activities", [])
            if activity.get("StatusCode") in ("Failed", "Cancelled")
        )[:FAILURES_KEPT]


def _instance(member: dict[str, Any], ec2: dict[str, Any]) -> GroupInstance:
    launched = ec2.get("LaunchTime")
    return GroupInstance(
        instance_id=member["InstanceId"],
        lifecycle_state=member["LifecycleState"],
        instance_type=member.get("InstanceType") or ec2.get("InstanceType", ""),
        ec2_state=ec2.get("State", {}).get("Name"),
        zone=member.get("AvailabilityZone"),
        launch_time=launched.timestamp() if launched else None,
        public_dns=ec2.get("PublicDnsName", ""),
        protected=bool(member.get("ProtectedFromScaleIn", False)),
    )
