"""Per-host socket routing at the edge: a CloudFront KeyValueStore (host id → the host's origin
name, written by reconcile) and the CloudFront Function that reads it on the `/ws/*` behavior
(`infra/edge/ws_router.js`, deployed as it is in the repository).

A function reads the store through its association and `cf.kvs()`:
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/kvs-with-functions.html
Origin switching needs the JavaScript runtime 2.0:
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/helper-functions-origin-modification.html
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aws_cdk import aws_cloudfront as cloudfront
from constructs import Construct

from infra.paths import REPO_ROOT

ROUTER_SOURCE: Final = REPO_ROOT / "infra" / "edge" / "ws_router.js"


class HostRoutes(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, source: Path = ROUTER_SOURCE
    ) -> None:
        super().__init__(scope, construct_id)
        self.store = cloudfront.KeyValueStore(
            self, "Store", comment="Spinup: GPU host id -> its origin (public DNS name)"
        )
        self.function = cloudfront.Function(
            self,
            "Router",
            comment="Spinup: routes /ws/<host>/... to that host's origin",
            code=cloudfront.FunctionCode.from_inline(source.read_text(encoding="utf-8")),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            key_value_store=self.store,
        )

    @property
    def kvs_arn(self) -> str:
        return self.store.key_value_store_arn

    @property
    def association(self) -> cloudfront.FunctionAssociation:
        """What the `/ws/*` behavior runs on every viewer request."""
        return cloudfront.FunctionAssociation(
            function=self.function, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
        )
