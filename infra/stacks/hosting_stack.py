"""Everything the browser talks to: CloudFront (with the per-host socket routing at its edge),
the site bucket, sign-in and the API's door."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from gpu_host.models.user_models import offered_models
from infra.config import DeployConfig
from infra.constructs.access_log_bucket import AccessLogBucket
from infra.constructs.edge_distribution import EdgeDistribution
from infra.constructs.frontend_deployment import FrontendDeployment
from infra.constructs.host_parameters import HostParameters
from infra.constructs.host_routes import HostRoutes
from infra.constructs.public_http_api import PublicHttpApi
from infra.constructs.site_bucket import SiteBucket
from infra.constructs.web_sign_in import WebSignIn
from infra.csp import content_security_policy
from infra.paths import FRONTEND_DIR


def frontend_config(config: DeployConfig, oidc: Mapping[str, Any]) -> dict[str, Any]:
    """The deployed config.json. No `wsUrl`: every session's socket URL names its host, and
    the status gives it. `models`, only when there are any: the user models the fleet serves,
    which the UI offers after the built-in ones."""
    runtime: dict[str, Any] = {"apiBase": config.api_path_prefix, "oidc": oidc}
    offered = offered_models(config.user_models, config.served_models)
    if offered:
        runtime["models"] = offered
    return runtime


class HostingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        origin_verify_value: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = config.log_retention
        access_logs = AccessLogBucket(self, "AccessLogs", retention_days=config.access_log_days)
        site = SiteBucket(self, "Site", access_logs=access_logs.bucket)
        self.sign_in = WebSignIn(self, "SignIn", domain_prefix=config.app_name)
        self.http_api = PublicHttpApi(
            self,
            "HttpApi",
            rate_limit=config.api_rate_limit,
            burst_limit=config.api_burst_limit,
            log_retention=retention,
        )
        self.routes = HostRoutes(self, "HostRoutes")
        self.edge = EdgeDistribution(
            self,
            "Edge",
            site_bucket=site.bucket,
            log_bucket=access_logs.bucket,
            api_domain_name=self.http_api.domain_name,
            api_path_prefix=config.api_path_prefix,
            host_port=config.origin_port,
            host_path_pattern=config.ws_path_pattern,
            host_router=self.routes.association,
            origin_verify_header=config.origin_verify_header,
            origin_verify_value=origin_verify_value,
            # The API and the socket are on the pages' own origin ('self'); the browser also
            # talks to Cognito's token and revocation endpoints.
            content_security_policy=content_security_policy(connect_to=[self.sign_in.origin]),
        )
        self.app_url = f"https://{self.edge.domain_name}"
        self.ws_base_url = config.ws_base_url(self.edge.domain_name)
        self.web_client = self.sign_in.add_web_client(
            app_url=f"{self.app_url}/", lifetimes=config.sign_in
        )
        FrontendDeployment(
            self,
            "Frontend",
            source_dir=FRONTEND_DIR,
            runtime_config=frontend_config(config, self.web_client.browser_config),
            bucket=site.bucket,
            distribution=self.edge.distribution,
        )
        HostParameters(
            self,
            "HostEnv",
            prefix=config.ssm_prefix,
            env={
                "SPINUP_JWKS_URL": self.sign_in.jwks_url,
                "SPINUP_JWT_ISSUER": self.sign_in.issuer,
                "SPINUP_JWT_AUDIENCE": self.web_client.client.user_pool_client_id,
                "SPINUP_ALLOWED_ORIGINS": self.app_url,
            },
        )
        CfnOutput(self, "AppUrl", value=f"{self.app_url}/")
        CfnOutput(self, "UserPoolId", value=self.sign_in.user_pool.user_pool_id)
