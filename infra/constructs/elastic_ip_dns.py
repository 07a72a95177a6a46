"""The public DNS name EC2 gives an Elastic IP, computed in the template.

CloudFront origins must be names, not addresses, and `AWS::EC2::EIP` has no DNS attribute.
EC2's scheme: `ec2-1-2-3-4.compute-1.amazonaws.com` in us-east-1,
`ec2-1-2-3-4.<region>.compute.amazonaws.com` elsewhere. The stack stays region-agnostic,
so the choice is a CloudFormation condition.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnCondition, Fn
from constructs import Construct


class ElasticIpDnsName(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, public_ip: str) -> None:
        super().__init__(scope, construct_id)
        dashed = Fn.join("-", Fn.split(".", public_ip))
        in_us_east_1 = CfnCondition(
            self, "InUsEast1", expression=Fn.condition_equals(Aws.REGION, "us-east-1")
        )
        self.name = Fn.condition_if(
            in_us_east_1.logical_id,
            f"ec2-{dashed}.compute-1.{Aws.URL_SUFFIX}",
            f"ec2-{dashed}.{Aws.REGION}.compute.{Aws.URL_SUFFIX}",
        ).to_string()
