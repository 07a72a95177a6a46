"""The GPU instance: DLAMI, IMDSv2, encrypted gp3 root, an Elastic IP and a lean role.

It boots from a static user-data script (`gpu_host/bootstrap/first-boot.sh`) that fetches
the current release and hands over to its `bootstrap.sh`; from then on systemd runs the host
(`spinup.target`). The instance runs after `cdk deploy` (that first boot installs everything
and pulls the Triton image); the control plane's reconcile stops it once it is idle.
An operating system `poweroff` stops (never terminates) it.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Aws, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.elastic_ip_dns import ElasticIpDnsName
from infra.constructs.host_release import HostRelease
from infra.nag import acknowledge


def first_boot_user_data(*, script: Path, ssm_prefix: str, region: str) -> ec2.UserData:
    """The first-boot script with its two inputs prepended; nothing in it changes per release."""
    body = script.read_text(encoding="utf-8")
    if body.startswith("#!"):
        body = body.split("\n", 1)[1]
    user_data = ec2.UserData.for_linux(shebang="#!/bin/bash")
    user_data.add_commands(
        f"export SPINUP_SSM_PREFIX='{ssm_prefix}'",
        f"export AWS_REGION='{region}'",
        body,
    )
    return user_data


class GpuInstance(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        instance_type: str,
        machine_image: ec2.IMachineImage,
        root_volume_gib: int,
        first_boot_script: Path,
        ssm_prefix: str,
        release: HostRelease,
        origin_secret: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="GPU host: Session Manager, its release, its SSM settings, its secret",
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

        self.instance = ec2.Instance(
            self,
            "Instance",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_group=security_group,
            role=self.role,
            instance_type=ec2.InstanceType(instance_type),
            machine_image=machine_image,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/sda1",
                    volume=ec2.BlockDeviceVolume.ebs(
                        root_volume_gib,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
            user_data=first_boot_user_data(
                script=first_boot_script, ssm_prefix=ssm_prefix, region=Aws.REGION
            ),
            user_data_causes_replacement=False,
            http_endpoint=True,
            http_tokens=ec2.HttpTokens.REQUIRED,
            http_put_response_hop_limit=1,
            detailed_monitoring=True,
            instance_initiated_shutdown_behavior=ec2.InstanceInitiatedShutdownBehavior.STOP,
            ebs_optimized=True,
            propagate_tags_to_volume_on_creation=True,
        )
        Tags.of(self.instance).add("Name", name)
        acknowledge(
            self.instance,
            "AwsSolutions-EC29",
            reason="Termination protection would make `cdk destroy` fail; the instance holds "
            "no state (code, models and settings are re-installed from the release).",
        )

        self.elastic_ip = ec2.CfnEIP(self, "ElasticIp", domain="vpc")
        ec2.CfnEIPAssociation(
            self,
            "ElasticIpAssociation",
            allocation_id=self.elastic_ip.attr_allocation_id,
            instance_id=self.instance.instance_id,
        )
        self.public_dns_name = ElasticIpDnsName(
            self, "PublicDnsName", public_ip=self.elastic_ip.attr_public_ip
        ).name

    @property
    def instance_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="ec2", resource="instance", resource_name=self.instance.instance_id
        )

    def _grant_settings(self, ssm_prefix: str) -> None:
        stack = Stack.of(self)
        path = stack.format_arn(
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
            reason="The host reads every setting under its own SSM path at boot; the path "
            "holds only this host's non-secret settings.",
        )
