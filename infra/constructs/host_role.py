"""The GPU hosts' role (one for the fleet): Session Manager, the release, the fleet's SSM
settings, the origin secret, and the launch lifecycle actions of its own group.

A host completes the launch hook when it is initialized (entering the warm pool) or ready
(starting), and sends heartbeats while it works, for the group named in its settings:
https://docs.aws.amazon.com/autoscaling/ec2/userguide/completing-lifecycle-hooks.html
The control stack adds what lives there (host records in the table, the ticket secret) as
policies of its own, attached to this role.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.fleet_scope import FleetScope
from infra.constructs.host_release import HostRelease
from infra.nag import acknowledge

LIFECYCLE_ACTIONS: Final = (
    "autoscaling:CompleteLifecycleAction",
    "autoscaling:RecordLifecycleActionHeartbeat",
    # The watchdog's way out when the control plane is gone (gpu_host/bootstrap/watchdog.py):
    # leave the group with its desired capacity lowered, so nothing replaces the host.
    "autoscaling:TerminateInstanceInAutoScalingGroup",
)


class HostRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ssm_prefix: str,
        release: HostRelease,
        origin_secret: secretsmanager.ISecret,
        fleet: FleetScope,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="GPU hosts: Session Manager, the release, the fleet's SSM settings and "
            "secret, the group's launch lifecycle actions",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")
            ],
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "AmazonSSMManagedInstanceCore]",
            reason="Session Manager replaces SSH (no key pair, no port 22); this AWS-maintained "
            "policy is the documented minimum for the SSM agent.",
        )
        release.grant_download(self.role)
        origin_secret.grant_read(self.role)
        self._grant_settings(ssm_prefix)
        self.role.add_to_principal_policy(fleet.statement(self.role, LIFECYCLE_ACTIONS))
        fleet.acknowledge_group_arn(self.role)

    def _grant_settings(self, ssm_prefix: str) -> None:
        path = Stack.of(self).format_arn(
            service="ssm",
            resource="parameter",
            resource_name=ssm_prefix.lstrip("/"),
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                resources=[path, f"{path}/*"],
            )
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:"
            f"<AWS::AccountId>:parameter{ssm_prefix}/*]",
            reason="A host reads every setting under the fleet's SSM path at boot; the path "
            "holds only the hosts' non-secret settings.",
        )
