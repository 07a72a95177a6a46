"""The HTTP API's front door: the API and its throttled, access-logged `$default` stage.

Routes are added by the control plane (`ControlApiRoutes`) in the stack that owns the Lambda.
The API lives with CloudFront so that CloudFront can name it as an origin while the Lambda is
told CloudFront's domain: no cross-stack cycle.
"""

from __future__ import annotations

import json

from aws_cdk import Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_logs as logs
from constructs import Construct

_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "authorizerError": "$context.authorizer.error",
        "user": "$context.authorizer.claims.sub",
    }
)


class PublicHttpApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rate_limit: int,
        burst_limit: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.HttpApi(self, "Api", create_default_stage=False)
        access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention)
        stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            # A cost guard as much as abuse protection: every call may run a reconcile.
            throttle=apigwv2.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
        )
        cfn_stage = stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn, format=_ACCESS_LOG_FORMAT
        )

    @property
    def domain_name(self) -> str:
        """`<api-id>.execute-api.<region>.<suffix>`: the host name CloudFront forwards to."""
        stack = Stack.of(self)
        return f"{self.api.api_id}.execute-api.{stack.region}.{stack.url_suffix}"
