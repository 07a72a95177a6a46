"""`ANY /api/{proxy+}` on the HTTP API → the control Lambda, behind the JWT authorizer.

API Gateway rejects a request without a valid token (401) before the Lambda runs; the
Lambda reads the verified claims from the event (`SPINUP_AUTH_MODE=apigw`). One proxy route
keeps the route table in one place, the FastAPI app, which answers unknown paths itself.
"""

from __future__ import annotations

from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from constructs import Construct


class ControlApiRoutes(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        http_api: apigwv2.IHttpApi,
        path_prefix: str,
        handler: lambda_.IFunction,
        authorizer: apigwv2.IHttpRouteAuthorizer,
    ) -> None:
        super().__init__(scope, construct_id)
        self.route = apigwv2.HttpRoute(
            self,
            "Proxy",
            http_api=http_api,
            route_key=apigwv2.HttpRouteKey.with_(
                f"{path_prefix}/{{proxy+}}", apigwv2.HttpMethod.ANY
            ),
            integration=integrations.HttpLambdaIntegration("Control", handler),
            authorizer=authorizer,
        )
