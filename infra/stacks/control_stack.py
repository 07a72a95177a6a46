"""The control plane: table, control API and reconcile Lambdas, their triggers and alarms (the
fleet's replace-loop alarm among them), and the secret that signs socket tickets. The Lambdas
find the GPU hosts through the fleet's group (by name) and write their routes into the edge's
KeyValueStore; nothing here names an instance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import DeployConfig
from infra.constructs.control_api_routes import ControlApiRoutes
from infra.constructs.control_table import ControlTable
from infra.constructs.fleet_control import grant_fleet_control
from infra.constructs.fleet_scope import FleetScope
from infra.constructs.host_parameters import HostParameters
from infra.constructs.python_lambda_code import python_package_code
from infra.constructs.reconcile_alarms import ReconcileAlarms
from infra.constructs.reconcile_triggers import ReconcileTriggers
from infra.constructs.replace_loop_alarm import ReplaceLoopAlarm
from infra.constructs.service_function import ServiceFunction
from infra.constructs.ticket_secret import TicketSecret
from infra.paths import LAMBDAS_DIR, PYPROJECT
from lambdas.settings import Settings

CONTROL_HANDLER = "lambdas.control.lambda_handler.handler"
RECONCILE_HANDLER = "lambdas.reconcile.handler.handler"


class ControlStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        http_api: apigwv2.IHttpApi,
        authorizer: apigwv2.IHttpRouteAuthorizer,
        jwt_issuer: str,
        jwt_audience: str,
        ws_base_url: str,
        kvs_arn: str,
        fleet: FleetScope,
        host_role: iam.IRole,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = config.log_retention
        table = ControlTable(self, "State")
        table.grant_host_record_access(host_role)
        tickets = TicketSecret(self, "Tickets", ssm_prefix=config.ssm_prefix)
        tickets.grant_host_read(host_role)

        environment = control_environment(
            config,
            table_name=table.table.table_name,
            group_name=fleet.group_name,
            kvs_arn=kvs_arn,
            ws_base_url=ws_base_url,
            jwt_issuer=jwt_issuer,
            jwt_audience=jwt_audience,
        )
        code = python_package_code(package_dir=LAMBDAS_DIR, pyproject=PYPROJECT)

        def service(
            name: str,
            description: str,
            handler: str,
            timeout_s: int,
            extra_environment: Mapping[str, str] | None = None,
        ) -> ServiceFunction:
            fn = ServiceFunction(
                self,
                name,
                description=description,
                code=code,
                handler=handler,
                environment={**environment, **(extra_environment or {})},
                memory_mb=config.lambda_memory_mb,
                timeout_s=timeout_s,
                log_retention=retention,
            )
            # The control API reconciles on every call, so both need the same rights.
            table.table.grant_read_write_data(fn.role)
            grant_fleet_control(fn.role, fleet=fleet, kvs_arn=kvs_arn)
            return fn

        # Only the control API issues tickets: it alone knows where the secret is and may read it.
        control = service(
            "Control",
            "Spinup control API",
            CONTROL_HANDLER,
            config.control_timeout_s,
            {"SPINUP_TICKET_SECRET_ARN": tickets.secret.secret_arn},
        )
        tickets.grant_read(control.role)
        reconcile = service(
            "Reconcile", "Spinup reconcile", RECONCILE_HANDLER, config.reconcile_timeout_s
        ).function
        ControlApiRoutes(
            self,
            "Api",
            http_api=http_api,
            path_prefix=config.api_path_prefix,
            handler=control.function,
            authorizer=authorizer,
        )
        triggers = ReconcileTriggers(
            self,
            "ReconcileTriggers",
            reconcile=reconcile,
            group_name=fleet.group_name,
            period_minutes=config.reconcile_period_minutes,
        )
        ReplaceLoopAlarm(
            self,
            "ReplaceLoopAlarm",
            launch_failures=triggers.launch_failures,
            launches=config.replace_loop_alarm_launches,
            hours=config.replace_loop_alarm_hours,
        )
        ReconcileAlarms(
            self,
            "ReconcileAlarms",
            reconcile=reconcile,
            silence_minutes=config.reconcile_silence_alarm_minutes,
        )
        HostParameters(
            self,
            "HostEnv",
            prefix=config.ssm_prefix,
            env={
                "SPINUP_TABLE_NAME": table.table.table_name,
                **host_control_environment(config),
            },
        )
        CfnOutput(self, "TableName", value=table.table.table_name)


HOST_CONTROL_SETTINGS = (
    # One socket per API session: the backend enforces the same per-user limit.
    "max_sessions_per_user",
    # The watchdog takes a host out once it is idle past the longest of these plus a margin
    # (gpu_host/bootstrap/watchdog.py): it must know the timeouts the control plane runs with.
    "idle_after_disconnect_s",
    "idle_while_connected_s",
    "boot_grace_s",
)
"""The control plane's settings the GPU hosts need too, published under the hosts' `env/`."""


def host_control_environment(config: DeployConfig) -> dict[str, str]:
    """`SPINUP_<NAME>` of each `HOST_CONTROL_SETTINGS` with the value the Lambdas get
    (`DeployConfig.control_values`, their one source)."""
    prefix = Settings.model_config["env_prefix"]
    values = config.control_values()
    return {f"{prefix}{name.upper()}": str(values[name]) for name in HOST_CONTROL_SETTINGS}


def control_environment(
    config: DeployConfig,
    *,
    table_name: str,
    group_name: str,
    kvs_arn: str,
    ws_base_url: str,
    jwt_issuer: str,
    jwt_audience: str,
) -> dict[str, str]:
    """The `SPINUP_*` settings of both Lambdas (lambdas.settings.Settings): this deployment's
    facts, and every tunable with the value `config` gives it (Settings' default unless
    overridden), so the console shows what the Lambdas run with. No instance: the hosts are
    the group's."""
    prefix = Settings.model_config["env_prefix"]
    return {
        "SPINUP_TABLE_NAME": table_name,
        "SPINUP_GROUP_NAME": group_name,
        "SPINUP_KVS_ARN": kvs_arn,
        "SPINUP_WS_BASE_URL": ws_base_url,
        "SPINUP_AUTH_MODE": "apigw",
        "SPINUP_JWT_ISSUER": jwt_issuer,
        "SPINUP_JWT_AUDIENCE": jwt_audience,
        "SPINUP_INSTANCE_TYPES": ",".join(config.instance_types),
        **{f"{prefix}{name.upper()}": str(v) for name, v in config.control_values().items()},
    }
