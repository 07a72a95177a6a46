"""How IAM names the GPU fleet: its Auto Scaling group by name, and only while it carries the
fleet's tag. No policy names an instance: hosts come and go, the group stays.

Every Auto Scaling action that changes the fleet (capacity, protection, termination, lifecycle
completions) acts on the group's ARN, so a statement names the group (its ARN ends in the
group's name; the middle is a UUID, hence the `*`) and requires the tag with
`autoscaling:ResourceTag/<key>`:
https://docs.aws.amazon.com/autoscaling/ec2/userguide/control-access-using-iam.html
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from infra.nag import acknowledge


@dataclass(frozen=True, kw_only=True)
class FleetScope:
    group_name: str
    tag_key: str
    tag_value: str

    def group_arn(self, scope: IConstruct) -> str:
        """The group's ARN in `scope`'s account and region, whatever its UUID."""
        return Stack.of(scope).format_arn(
            service="autoscaling",
            resource="autoScalingGroup",
            resource_name=f"*:autoScalingGroupName/{self.group_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    @property
    def condition(self) -> dict[str, dict[str, str]]:
        return {"StringEquals": {f"autoscaling:ResourceTag/{self.tag_key}": self.tag_value}}

    def statement(self, scope: IConstruct, actions: Sequence[str]) -> iam.PolicyStatement:
        """`actions` on the fleet's group only, and only while it carries the fleet's tag."""
        return iam.PolicyStatement(
            actions=list(actions),
            resources=[self.group_arn(scope)],
            conditions=self.condition,
        )

    def acknowledge_group_arn(self, scope: IConstruct) -> None:
        """cdk-nag flags the ARN's `*` (the group's UUID, unknown until it exists)."""
        acknowledge(
            scope,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:"
            f"<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/{self.group_name}]",
            reason="The wildcard stands for the group's UUID, which CloudFormation assigns; the "
            "ARN names the one group, and the statement also requires the fleet's tag.",
        )
