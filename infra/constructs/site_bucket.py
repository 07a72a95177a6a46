"""Private S3 bucket holding the frontend; only CloudFront reads it (origin access control)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


class SiteBucket(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="site-bucket/",
            # Everything here is rebuilt from frontend/ on deploy.
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
