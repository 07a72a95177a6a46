"""A public VPC over several availability zones (one public subnet each, no NAT gateway to pay
for) and the GPU hosts' security group.

The fleet spans every subnet, so that a zone without capacity for the instance types is not the
end of a start. Each host gets a public IPv4 address and DNS name: CloudFront reaches it there
(VPC origins do not carry WebSockets). The only inbound rule admits CloudFront's origin-facing
addresses on the origin port; a host needs outbound access for S3, SSM, DynamoDB, Auto Scaling,
PyPI and the Triton image registry.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct


class HostNetwork(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cidr: str,
        availability_zones: tuple[str, ...] | None,
        zone_count: int,
        origin_port: int,
        cloudfront_prefix_list_id: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=26
                )
            ],
            # Without named zones, the region's first ones (`Fn::GetAZs`): environment-agnostic.
            max_azs=None if availability_zones else zone_count,
            availability_zones=list(availability_zones) if availability_zones else None,
            # A host's public DNS name (CloudFront's origin) needs both.
            enable_dns_hostnames=True,
            enable_dns_support=True,
        )
        self.vpc.add_flow_log(
            "RejectedFlows",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogs", retention=log_retention)
            ),
            # What the security group turns away is the interesting part; ALL would mostly
            # record video traffic.
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "HostSecurityGroup",
            vpc=self.vpc,
            description="GPU hosts: origin port from CloudFront only",
            allow_all_outbound=True,
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.prefix_list(cloudfront_prefix_list_id),
            ec2.Port.tcp(origin_port),
            "CloudFront origin-facing servers",
        )
