"""The secret that signs socket tickets (lambdas.domain.tickets), shared by the control API,
which issues them, and the GPU host, which verifies them offline.

Secrets Manager generates it at deploy time, so the value is never in the template, the
cloud assembly or git. The control Lambda gets the secret's ARN (`SPINUP_TICKET_SECRET_ARN`)
and reads the value at cold start; the host finds the ARN under its SSM prefix and reads the
value at boot (gpu_host.bootstrap.render_config). Each reader is granted this one secret.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from gpu_host.bootstrap import parameters
from infra.constructs.origin_secret import generated_secret

SECRET_LENGTH = 64
"""Letters and digits only (render_config refuses anything else): ~380 bits for HS256."""


class TicketSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, ssm_prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.secret = generated_secret(
            self,
            description="Signs the single-use socket tickets of the WebSocket hello (HS256)",
            length=SECRET_LENGTH,
            rotation="Rotating needs the control Lambda and the host to change together (a new "
            "Lambda environment, a host restart); done by hand, see docs/operations.md.",
        )
        self.arn_parameter = ssm.StringParameter(
            self,
            "Arn",
            parameter_name=parameters.parameter_name(ssm_prefix, parameters.TICKET_SECRET_ARN),
            string_value=self.secret.secret_arn,
            description="ARN of the socket ticket secret the GPU host reads at boot",
        )

    def grant_read(self, role: iam.IRole) -> None:
        """For a role of this stack (the control Lambda's)."""
        self.secret.grant_read(role)

    def grant_host_read(self, role: iam.IRole) -> iam.Policy:
        """For the GPU host's (imported) role: a policy of this stack attached to it, because
        granting on the role's own default policy would make the host's stack depend on this
        one (as the table's host-record grant does)."""
        return iam.Policy(
            self,
            "HostRead",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    resources=[self.secret.secret_arn],
                )
            ],
        )
