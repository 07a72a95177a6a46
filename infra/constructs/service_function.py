"""A Python Lambda function with its own role and log group, and nothing granted by default.

CDK's default role carries the AWSLambdaBasicExecutionRole managed policy (logs in every log
group); this role may only write to its own log group.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_12


class ServiceFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        code: lambda_.Code,
        handler: str,
        environment: Mapping[str, str],
        memory_mb: int,
        timeout_s: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            code=code,
            handler=handler,
            environment=dict(environment),
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_s),
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            reason="Python 3.12 is pinned on purpose: the bundled wheels are built for it "
            "(infra/constructs/python_lambda_code.py); moving runtimes is a tested change.",
        )
