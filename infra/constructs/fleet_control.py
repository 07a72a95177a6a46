"""What the control plane may do to the GPU fleet and its routes (both Lambdas: the control API
reconciles on every call).

- read the group, its warm pool, its scaling activities and the instances (`Describe*`: no
  resource-level permissions, hence `*`);
- change the group's desired capacity, protect or unprotect a host, replace a host: on the
  fleet's group only, and only while it carries the fleet's tag (`FleetScope`);
- read and write the routes in the CloudFront KeyValueStore (its data plane), on that store only.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_iam as iam

from infra.constructs.fleet_scope import FleetScope
from infra.nag import acknowledge

FLEET_ACTIONS: Final = (
    "autoscaling:SetDesiredCapacity",
    "autoscaling:SetInstanceProtection",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
)
DESCRIBE_ACTIONS: Final = ("autoscaling:Describe*", "ec2:DescribeInstances")
ROUTE_ACTIONS: Final = (
    "cloudfront-keyvaluestore:DescribeKeyValueStore",
    "cloudfront-keyvaluestore:ListKeys",
    "cloudfront-keyvaluestore:PutKey",
    "cloudfront-keyvaluestore:DeleteKey",
)


def grant_fleet_control(role: iam.Role, *, fleet: FleetScope, kvs_arn: str) -> None:
    role.add_to_principal_policy(fleet.statement(role, FLEET_ACTIONS))
    fleet.acknowledge_group_arn(role)
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=list(DESCRIBE_ACTIONS), resources=["*"])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=list(ROUTE_ACTIONS), resources=[kvs_arn])
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        reason="Auto Scaling's Describe* calls and ec2:DescribeInstances support no "
        "resource-level permissions; every action that changes the fleet names its group.",
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Action::autoscaling:Describe*]",
        reason="Read-only: the group, its warm pool and its scaling activities (the capacity "
        "errors a status reports) are three Describe calls, all without side effects.",
    )
