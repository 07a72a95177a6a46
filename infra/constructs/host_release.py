"""The code the GPU hosts run, as one S3 asset, and the SSM parameter that names it.

A host installs the release the parameter names once, when it initializes (entering the warm
pool, or before its first start when the pool is empty); a start installs nothing. A new
release therefore reaches only instances launched after it: its asset hash is on the launch
template (`RELEASE_TAG`, a tag of the instances it launches), so each release is a new
template version, and an instance refresh replaces the hosts of older versions
(docs/operations.md, "How a new AMI or a new release reaches the hosts").
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


RELEASE_TAG = "spinup:release"
"""Tag on the launch template's instances and volumes: the asset hash of the release the
template's hosts install at initialize."""


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
            description="S3 URL of the GPU host release a host installs when it initializes",
        )

    @property
    def release_id(self) -> str:
        """The asset's content hash: changes exactly when the release's content does."""
        return self.asset.asset_hash

    def grant_download(self, grantee: iam.IGrantable) -> None:
        """Read this release object only (not the whole asset bucket)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.asset.bucket.arn_for_objects(self.asset.s3_object_key)],
            )
        )
        self.parameter.grant_read(grantee)
