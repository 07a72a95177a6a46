"""The GPU hosts' launch template: the ECS GPU-optimized AMI, IMDSv2 only, an encrypted gp3
root, the hosts' role, a public IPv4 address, the static first-boot user data and the
CloudFront-only security group.

A host boots from `gpu_host/bootstrap/first-boot.sh`, which fetches the current release and
hands over to its `bootstrap.sh`; from then on systemd runs the host. The user data names only
the SSM prefix and the region. The release's asset hash is a tag of the instances
(`host_release.RELEASE_TAG`): hosts install a release only when they initialize, so a new
release must make a new template version, which an instance refresh rolls through the group.
The public address is what CloudFront connects to (by the instance's public DNS name, which
the control plane writes into the routes when the host runs); a stopped instance gives it
back, so it is paid only while a host runs.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.constructs.host_release import RELEASE_TAG

ROOT_DEVICE = "/dev/xvda"
"""The root device name of the host image (Amazon Linux 2023): a mapping under another name
would add a second volume instead of sizing the root."""


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


class HostLaunchTemplate(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        role: iam.IRole,
        security_group: ec2.ISecurityGroup,
        instance_type: str,
        machine_image: ec2.IMachineImage,
        root_volume_gib: int,
        first_boot_script: Path,
        ssm_prefix: str,
        release_id: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.template = ec2.LaunchTemplate(
            self,
            "Template",
            role=role,
            security_group=security_group,
            associate_public_ip_address=True,
            instance_type=ec2.InstanceType(instance_type),
            machine_image=machine_image,
            block_devices=[
                ec2.BlockDevice(
                    device_name=ROOT_DEVICE,
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
            http_endpoint=True,
            http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
            http_put_response_hop_limit=1,
            # The host reads its lifecycle state (`autoscaling/target-lifecycle-state`) and its
            # instance id from instance metadata; tags are not needed there.
            instance_metadata_tags=False,
            detailed_monitoring=True,
            instance_initiated_shutdown_behavior=ec2.InstanceInitiatedShutdownBehavior.STOP,
            ebs_optimized=True,
        )
        # The instances' and volumes' Name (the group's tags name them as well).
        Tags.of(self.template).add("Name", name)
        # In the template's data (its tag specifications), so that a new release is a new
        # template version; and on each host, which says which release it installed.
        Tags.of(self.template).add(RELEASE_TAG, release_id)
