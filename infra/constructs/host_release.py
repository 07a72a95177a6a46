"""The code the GPU instance runs, as one S3 asset, and the SSM parameter that names it.

The instance installs whatever release the parameter names, at first boot and at every
later start (`spinup-release.service`). Deploying new code therefore only changes this
parameter; it never stops, replaces or reboots the instance.
"""

from __future__ import annotations

from aws_cdk import IgnoreMode
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.paths import REPO_ROOT

# gitignore semantics, anchored at the repository root: keep only what the host runs. The
# backend loads the socket protocol from the frontend's copy (its one source), so that one
# file of frontend/ ships too; a path is re-included level by level, as gitignore requires.
# `lambdas/` holds the contracts the backend shares with the control plane (the host record,
# the settings types, the token verifier, the socket tickets); its boto3 adapters are shipped
# but unused there.
RELEASE_CONTENT = (
    "/*",
    "!/gpu_host/",
    "!/lambdas/",
    "!/systemd/",
    "!/pyproject.toml",
    "!/frontend/",
    "/frontend/*",
    "!/frontend/js/",
    "/frontend/js/*",
    "!/frontend/js/protocol.json",
    "__pycache__/",
    "*.pyc",
    ".mypy_cache/",
    ".pytest_cache/",
)


class HostRelease(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, parameter_name: str) -> None:
        super().__init__(scope, construct_id)
        self.asset = s3_assets.Asset(
            self,
            "Code",
            path=str(REPO_ROOT),
            ignore_mode=IgnoreMode.GIT,
            exclude=list(RELEASE_CONTENT),
        )
        self.parameter = ssm.StringParameter(
            self,
            "Location",
            parameter_name=parameter_name,
            string_value=self.asset.s3_object_url,
            description="S3 URL of the GPU host release the instance installs at boot",
        )

    def grant_download(self, grantee: iam.IGrantable) -> None:
        """Read this release object only (not the whole asset bucket)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.asset.bucket.arn_for_objects(self.asset.s3_object_key)],
            )
        )
        self.parameter.grant_read(grantee)
