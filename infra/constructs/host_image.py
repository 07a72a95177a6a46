"""The GPU host's machine image (`infra.config.HOST_AMI_SSM_PARAMETER`), latest or pinned."""

from __future__ import annotations

import jsii
from aws_cdk import aws_ec2 as ec2
from constructs import Construct


@jsii.implements(ec2.IMachineImage)
class PinnedImage:
    """One AMI id, whatever the region: for a deployment that pins its image."""

    def __init__(self, image_id: str) -> None:
        self._image_id = image_id

    def get_image(self, scope: Construct) -> ec2.MachineImageConfig:
        return ec2.MachineImageConfig(
            image_id=self._image_id,
            os_type=ec2.OperatingSystemType.LINUX,
            user_data=ec2.UserData.for_linux(),
        )


def host_machine_image(*, ssm_parameter: str, pinned_id: str | None) -> ec2.IMachineImage:
    """The host image. Unpinned, CloudFormation reads the public SSM parameter at every deploy, so a
    deploy after AWS publishes a newer image replaces the instance (new id, empty Docker cache);
    pin the id (`-c spinup:amiId=ami-…`) to keep the instance across deploys."""
    if pinned_id is not None:
        return PinnedImage(pinned_id)
    return ec2.MachineImage.from_ssm_parameter(ssm_parameter, os=ec2.OperatingSystemType.LINUX)
