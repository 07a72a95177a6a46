"""The id of CloudFront's origin-facing managed prefix list, without a synth-time lookup.

Security group rules need the list's id (`pl-…`), which differs per region. CDK's
`PrefixList.from_lookup` needs credentials at synth; this app must synth offline. So, unless
the id is given in context (`spinup:cloudfrontPrefixListId`), a custom resource calls
`ec2:DescribeManagedPrefixLists` at deploy time, in the stack's own region.
"""

from __future__ import annotations

from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.config import CLOUDFRONT_ORIGIN_FACING_PREFIX_LIST
from infra.nag import acknowledge, acknowledge_provider_logs


class CloudFrontPrefixList(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, prefix_list_id: str | None) -> None:
        super().__init__(scope, construct_id)
        if prefix_list_id is not None:
            self.prefix_list_id = prefix_list_id
            return
        call = cr.AwsSdkCall(
            service="EC2",
            action="describeManagedPrefixLists",
            parameters={
                "Filters": [
                    {"Name": "prefix-list-name", "Values": [CLOUDFRONT_ORIGIN_FACING_PREFIX_LIST]}
                ]
            },
            physical_resource_id=cr.PhysicalResourceId.of(CLOUDFRONT_ORIGIN_FACING_PREFIX_LIST),
            output_paths=["PrefixLists.0.PrefixListId"],
        )
        lookup = cr.AwsCustomResource(
            self,
            "Lookup",
            on_create=call,
            on_update=call,
            install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(
                resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE
            ),
        )
        acknowledge(
            lookup,
            "AwsSolutions-IAM5[Resource::*]",
            reason="ec2:DescribeManagedPrefixLists supports no resource-level permissions; "
            "the policy allows only that read-only action.",
        )
        acknowledge_provider_logs(lookup)
        self.prefix_list_id = lookup.get_response_field("PrefixLists.0.PrefixListId")
