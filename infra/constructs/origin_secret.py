"""The shared secret CloudFront sends to the origin in `X-Origin-Verify`.

Secrets Manager generates it at deploy time, so the value is never in the template, the
cloud assembly or git (a CDK-generated random string would be, and would change on every
synth). CloudFront receives it through a `{{resolve:secretsmanager:…}}` dynamic reference,
the instance reads it at boot with a GetSecretValue scoped to this one secret.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge


def generated_secret(
    scope: Construct, *, description: str, length: int, rotation: str
) -> secretsmanager.Secret:
    """A secret of letters and digits that Secrets Manager generates at deploy time (never in
    the template), deleted with its stack; `rotation` says why it is rotated by hand (the
    cdk-nag SMG4 acknowledgment)."""
    secret = secretsmanager.Secret(
        scope,
        "Secret",
        description=description,
        generate_secret_string=secretsmanager.SecretStringGenerator(
            password_length=length, exclude_punctuation=True, include_space=False
        ),
        removal_policy=RemovalPolicy.DESTROY,
    )
    acknowledge(secret, "AwsSolutions-SMG4", reason=rotation)
    return secret


class OriginSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.secret = generated_secret(
            self,
            description="Value of the X-Origin-Verify header CloudFront adds for the GPU origin",
            length=48,
            rotation="Rotating needs CloudFront and nginx to change together (redeploy the "
            "hosting stack, restart the instance); done by hand, see docs/operations.md.",
        )

    @property
    def value(self) -> str:
        """A dynamic reference, resolved by CloudFormation at deploy time."""
        return self.secret.secret_value.unsafe_unwrap()
