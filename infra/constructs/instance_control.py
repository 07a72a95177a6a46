"""The EC2 permissions the control plane needs for its one instance."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import IConstruct

from infra.nag import acknowledge


def grant_instance_control(role: iam.Role, *, instance_arn: str) -> None:
    """Start, stop and resize (capacity fallback) the instance; describe it."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ec2:StartInstances", "ec2:StopInstances", "ec2:ModifyInstanceAttribute"],
            resources=[instance_arn],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ec2:DescribeInstances", "ec2:DescribeInstanceStatus"],
            resources=["*"],
        )
    )
    _acknowledge_describe(role)


def _acknowledge_describe(scope: IConstruct) -> None:
    acknowledge(
        scope,
        "AwsSolutions-IAM5[Resource::*]",
        reason="ec2:DescribeInstances and ec2:DescribeInstanceStatus support no resource-level "
        "permissions; every mutating EC2 action is scoped to the one instance ARN.",
    )
