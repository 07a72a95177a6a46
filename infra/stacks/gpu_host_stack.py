"""The GPU fleet: network, the hosts' role and launch template, the Auto Scaling group with its
warm pool and launch hook, the hosts' release and settings, and the origin secret.

Nothing here names an instance: the hosts are found through the group, and each reads its own
instance id from instance metadata.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import (
    FLEET_TAG_KEY,
    MIN_ZONES,
    DeployConfig,
    group_name_parameter,
    launch_hook_parameter,
    origin_port_parameter,
    origin_secret_parameter,
    release_parameter,
)
from infra.constructs.cloudfront_prefix_list import CloudFrontPrefixList
from infra.constructs.fleet_scope import FleetScope
from infra.constructs.gpu_fleet import GpuFleet
from infra.constructs.host_image import host_machine_image
from infra.constructs.host_launch_template import HostLaunchTemplate
from infra.constructs.host_network import HostNetwork
from infra.constructs.host_parameters import HostParameters
from infra.constructs.host_release import HostRelease
from infra.constructs.host_role import HostRole
from infra.constructs.origin_secret import OriginSecret
from infra.paths import GPU_HOST_DIR


def fleet_scope(config: DeployConfig) -> FleetScope:
    """The fleet as IAM names it, the same in every stack."""
    return FleetScope(
        group_name=config.group_name, tag_key=FLEET_TAG_KEY, tag_value=config.app_name
    )


class GpuHostStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeployConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        fleet = fleet_scope(config)
        prefix_list = CloudFrontPrefixList(
            self, "CloudFrontPrefixList", prefix_list_id=config.cloudfront_prefix_list_id
        )
        network = HostNetwork(
            self,
            "Network",
            cidr=config.vpc_cidr,
            availability_zones=config.availability_zones,
            zone_count=MIN_ZONES,
            origin_port=config.origin_port,
            cloudfront_prefix_list_id=prefix_list.prefix_list_id,
            log_retention=config.log_retention,
        )
        self.origin_secret = OriginSecret(self, "OriginSecret")
        release = HostRelease(self, "Release", parameter_name=release_parameter(config.ssm_prefix))
        self.host_role = HostRole(
            self,
            "HostRole",
            ssm_prefix=config.ssm_prefix,
            release=release,
            origin_secret=self.origin_secret.secret,
            fleet=fleet,
        )
        host_name = f"{config.app_name}-gpu-host"
        launch_template = HostLaunchTemplate(
            self,
            "LaunchTemplate",
            name=host_name,
            role=self.host_role.role,
            security_group=network.security_group,
            instance_type=config.instance_type,
            machine_image=host_machine_image(
                ssm_parameter=config.machine_image_ssm_parameter,
                pinned_id=config.machine_image_id,
            ),
            root_volume_gib=config.root_volume_gib,
            first_boot_script=GPU_HOST_DIR / "bootstrap" / "first-boot.sh",
            ssm_prefix=config.ssm_prefix,
            release_id=release.release_id,
        )
        self.fleet = GpuFleet(
            self,
            "Fleet",
            fleet=fleet,
            vpc=network.vpc,
            launch_template=launch_template.template,
            instance_types=config.instance_types,
            max_hosts=config.max_hosts,
            warm_hosts=config.warm_hosts,
            launch_hook_name=config.launch_hook_name,
            launch_hook_heartbeat_s=config.launch_hook_heartbeat_s,
            name_tag=host_name,
        )
        settings = [release, self.host_role]
        for construct_id, name, value, description in (
            (
                "OriginSecretArn",
                origin_secret_parameter(config.ssm_prefix),
                self.origin_secret.secret.secret_arn,
                "ARN of the X-Origin-Verify secret nginx checks",
            ),
            (
                "OriginPort",
                origin_port_parameter(config.ssm_prefix),
                str(config.origin_port),
                "Port nginx listens on for CloudFront",
            ),
            (
                "GroupName",
                group_name_parameter(config.ssm_prefix),
                config.group_name,
                "The GPU fleet's Auto Scaling group (lifecycle actions name it)",
            ),
            (
                "LaunchHookName",
                launch_hook_parameter(config.ssm_prefix),
                config.launch_hook_name,
                "The launch lifecycle hook a host completes when initialized or ready",
            ),
        ):
            settings.append(
                ssm.StringParameter(
                    self,
                    construct_id,
                    parameter_name=name,
                    string_value=value,
                    description=description,
                )
            )
        host_env = HostParameters(
            self,
            "HostEnv",
            prefix=config.ssm_prefix,
            env={
                "SPINUP_AWS_REGION": Aws.REGION,
                "SPINUP_TRITON_URL": f"http://127.0.0.1:{config.triton_http_port}",
                "SPINUP_MODELS": ",".join(config.served_models),
                "SPINUP_REQUIRE_TICKETS": "true" if config.require_tickets else "false",
                **config.host_env(),
            },
        )
        # The warm pool's first instance launches as soon as the group exists and initializes
        # at once: its release, its settings and its rights must be there before it boots.
        # (The hosting and control stacks' settings are read later, at every start.)
        self.fleet.group.node.add_dependency(*settings, host_env)
        CfnOutput(self, "GroupNameOutput", value=self.fleet.group.auto_scaling_group_name)
