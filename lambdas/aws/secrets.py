"""Secrets the control plane reads from Secrets Manager, once per Lambda execution environment.

The CDK app passes a secret's ARN (`SPINUP_TICKET_SECRET_ARN`), never its value: a value in
a Lambda's environment would be in the template and readable by anyone who may read the
function's configuration.
"""

from __future__ import annotations

import boto3
from botocore.config import Config
from pydantic import SecretStr

from lambdas.domain.tickets import check_secret
from lambdas.settings import Settings

_BOTO_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 3})


def with_ticket_secret(
    settings: Settings, session: boto3.session.Session | None = None
) -> Settings:
    """`settings` with `ticket_secret` read from `ticket_secret_arn` when only the ARN is set."""
    if settings.ticket_secret is not None or not settings.ticket_secret_arn:
        return settings
    session = session or boto3.session.Session(region_name=settings.aws_region)
    client = session.client(
        "secretsmanager",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url or None,
        config=_BOTO_CONFIG,
    )
    value = client.get_secret_value(SecretId=settings.ticket_secret_arn)["SecretString"]
    return settings.model_copy(update={"ticket_secret": SecretStr(check_secret(value))})
