"""Uploads frontend/ and a generated config.json, then invalidates CloudFront's cache."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import CfnElement, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct, IConstruct

from infra.nag import acknowledge

# package.json only tells Node's test runner that js/ holds ES modules.
_NOT_SHIPPED = ("package.json", "package-lock.json", "node_modules", "**/*.test.js", ".*")


class FrontendDeployment(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_dir: Path,
        runtime_config: Mapping[str, object],
        bucket: s3.IBucket,
        distribution: cloudfront.IDistribution,
    ) -> None:
        super().__init__(scope, construct_id)
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deploy",
            sources=[
                s3deploy.Source.asset(str(source_dir), exclude=list(_NOT_SHIPPED)),
                s3deploy.Source.json_data("config.json", dict(runtime_config)),
            ],
            destination_bucket=bucket,
            distribution=distribution,
            distribution_paths=["/*"],
            memory_limit=256,
        )
        self._acknowledge_provider(bucket)

    def _acknowledge_provider(self, bucket: s3.IBucket) -> None:
        """Findings on CDK's BucketDeployment provider (one Lambda + role per stack)."""
        role = self.deployment.handler_role
        function = role.node.scope
        assert function is not None
        acknowledge(
            function,
            "AwsSolutions-L1",
            reason="The runtime of CDK's BucketDeployment provider is chosen by aws-cdk-lib.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            reason="CDK's BucketDeployment provider writes its own logs; the AWS managed policy "
            "grants exactly CloudWatch Logs writes.",
        )
        copy = "it copies the built frontend from CDK's asset bucket into the site bucket"
        for finding, reason in (
            ("AwsSolutions-IAM5[Action::s3:GetObject*]", f"Read the source objects: {copy}."),
            ("AwsSolutions-IAM5[Action::s3:GetBucket*]", f"Bucket location/metadata: {copy}."),
            ("AwsSolutions-IAM5[Action::s3:List*]", f"List both buckets to sync: {copy}."),
            (
                "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
                "Sync removes files deleted from frontend/.",
            ),
            ("AwsSolutions-IAM5[Action::s3:Abort*]", "Abort failed multipart uploads of the sync."),
            (
                f"AwsSolutions-IAM5[Resource::<{_logical_id(bucket)}.Arn>/*]",
                "Every object of the site bucket is the deployment's to replace.",
            ),
            (
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::"
                "cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]",
                "Asset object keys are content hashes unknown until synth; read-only access.",
            ),
            (
                "AwsSolutions-IAM5[Resource::*]",
                "cloudfront:CreateInvalidation/GetInvalidation on the distribution after upload; "
                "CDK's provider grants it without a resource ARN.",
            ),
        ):
            acknowledge(role, finding, reason=reason)


def _logical_id(construct: IConstruct) -> str:
    """How cdk-nag names a resource in a finding: its resolved logical ID."""
    resource = construct.node.default_child
    assert isinstance(resource, CfnElement)
    return str(Stack.of(construct).resolve(resource.logical_id))
