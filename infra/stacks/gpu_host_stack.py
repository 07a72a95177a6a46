"""The GPU host: network, instance, Elastic IP, its release and the origin secret."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import (
    DeployConfig,
    origin_dns_name_parameter,
    origin_port_parameter,
    origin_secret_parameter,
    release_parameter,
)
from infra.constructs.cloudfront_prefix_list import CloudFrontPrefixList
from infra.constructs.gpu_instance import GpuInstance
from infra.constructs.host_image import host_machine_image
from infra.constructs.host_network import HostNetwork
from infra.constructs.host_parameters import HostParameters
from infra.constructs.host_release import HostRelease
from infra.constructs.origin_secret import OriginSecret
from infra.paths import GPU_HOST_DIR


class GpuHostStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeployConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = config.log_retention
        prefix_list = CloudFrontPrefixList(
            self, "CloudFrontPrefixList", prefix_list_id=config.cloudfront_prefix_list_id
        )
        network = HostNetwork(
            self,
            "Network",
            cidr=config.vpc_cidr,
            availability_zone=config.availability_zone,
            origin_port=config.origin_port,
            cloudfront_prefix_list_id=prefix_list.prefix_list_id,
            log_retention=retention,
        )
        self.origin_secret = OriginSecret(self, "OriginSecret")
        release = HostRelease(self, "Release", parameter_name=release_parameter(config.ssm_prefix))
        self.host = GpuInstance(
            self,
            "Gpu",
            name=f"{config.app_name}-{config.host_id}",
            vpc=network.vpc,
            security_group=network.security_group,
            instance_type=config.instance_type,
            machine_image=host_machine_image(
                ssm_parameter=config.machine_image_ssm_parameter,
                pinned_id=config.machine_image_id,
            ),
            root_volume_gib=config.root_volume_gib,
            first_boot_script=GPU_HOST_DIR / "bootstrap" / "first-boot.sh",
            ssm_prefix=config.ssm_prefix,
            release=release,
            origin_secret=self.origin_secret.secret,
        )
        ssm.StringParameter(
            self,
            "OriginSecretArn",
            parameter_name=origin_secret_parameter(config.ssm_prefix),
            string_value=self.origin_secret.secret.secret_arn,
        )
        ssm.StringParameter(
            self,
            "OriginPort",
            parameter_name=origin_port_parameter(config.ssm_prefix),
            string_value=str(config.origin_port),
        )
        HostParameters(
            self,
            "HostEnv",
            prefix=config.ssm_prefix,
            env={
                "SPINUP_HOST_ID": config.host_id,
                "SPINUP_AWS_REGION": Aws.REGION,
                "SPINUP_TRITON_GRPC_URL": f"127.0.0.1:{config.triton_grpc_port}",
                "SPINUP_MODELS": ",".join(config.served_models),
                "SPINUP_REQUIRE_TICKETS": "true" if config.require_tickets else "false",
            },
        )
        # The name is a CloudFormation condition on the region, and a condition cannot cross
        # stacks; a parameter holds the computed value and other stacks reference that.
        self.origin_dns_name = ssm.StringParameter(
            self,
            "OriginDnsName",
            parameter_name=origin_dns_name_parameter(config.ssm_prefix),
            string_value=self.host.public_dns_name,
            description="Public DNS name of the GPU host's Elastic IP (CloudFront's origin)",
        ).string_value
        CfnOutput(self, "InstanceId", value=self.host.instance.instance_id)
        CfnOutput(self, "OriginDnsNameOutput", value=self.host.public_dns_name)
