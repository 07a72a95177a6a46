"""The CDK app: three stacks, wired by constructor parameters, checked by cdk-nag.

Dependency order (no cycles): gpu host → hosting → control.
- hosting needs the origin secret (the hosts' origins are routed per request at the edge);
- control needs the hosts' role, the HTTP API, the issuer, the sockets' base URL and the
  routes' KeyValueStore. It names the fleet's group by its fixed name: no instance, nothing
  that a redeploy of the fleet changes, is wired into it.
The HTTP API and Cognito live in the hosting stack: CloudFront names the API as an origin,
Cognito names CloudFront's URL as its callback, and the control Lambda is told CloudFront's
domain (its `SPINUP_WS_BASE_URL`); with the API in the control stack that would be a cycle.

Synthesizes offline: no account/region (environment-agnostic), no context lookups.
`cdk synth` runs it with `python3 -m infra.app`.
"""

from __future__ import annotations

from aws_cdk import App, Tags

from gpu_host.models.spec import USER_MODELS_FILE
from infra.config import DeployConfig, config_from_context
from infra.nag import enable_nag
from infra.stacks.control_stack import ControlStack
from infra.stacks.gpu_host_stack import GpuHostStack, fleet_scope
from infra.stacks.hosting_stack import HostingStack


def build_app(app: App, config: DeployConfig) -> tuple[GpuHostStack, HostingStack, ControlStack]:
    """Add the three stacks to `app`; `main` and the tests share this."""
    name = config.app_name
    gpu = GpuHostStack(app, f"{name}-gpu-host", config=config, description="Spinup GPU fleet")
    hosting = HostingStack(
        app,
        f"{name}-hosting",
        config=config,
        origin_verify_value=gpu.origin_secret.value,
        description="Spinup hosting: CloudFront, site bucket, sign-in, HTTP API",
    )
    control = ControlStack(
        app,
        f"{name}-control",
        config=config,
        http_api=hosting.http_api.api,
        authorizer=hosting.web_client.api_authorizer,
        jwt_issuer=hosting.sign_in.issuer,
        jwt_audience=hosting.web_client.client.user_pool_client_id,
        ws_base_url=hosting.ws_base_url,
        kvs_arn=hosting.routes.kvs_arn,
        fleet=fleet_scope(config),
        host_role=gpu.host_role.role,
        description="Spinup control plane: table, control API, reconcile",
    )
    Tags.of(app).add("project", name)
    return gpu, hosting, control


def main() -> None:
    app = App()
    build_app(app, config_from_context(app.node.get_all_context(), user_models=USER_MODELS_FILE))
    enable_nag(app)
    app.synth()


if __name__ == "__main__":
    main()
