"""The SSM parameters a GPU host reads at boot, relative to its prefix (`/<app>/<host id>`).

The CDK app writes them (infra/), the host reads them (bootstrap.sh, render_config); both
take the names from here.
"""

from __future__ import annotations

from typing import Final

ENV_PATH: Final = "env"
"""`<prefix>/env/SPINUP_FOO` holds the value of `SPINUP_FOO` in the host's environment file."""
RELEASE: Final = "release"
"""S3 URL of the release to install (`s3://<bucket>/<asset hash>.zip`)."""
ORIGIN_PORT: Final = "origin-port"
ORIGIN_SECRET_ARN: Final = "origin-verify-secret-arn"
ORIGIN_DNS_NAME: Final = "origin-dns-name"
TICKET_SECRET_ARN: Final = "ticket-secret-arn"
"""ARN of the secret that signs socket tickets; its value becomes `SPINUP_TICKET_SECRET`."""
TICKET_SECRET_ENV: Final = "SPINUP_TICKET_SECRET"


def parameter_name(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


def env_parameter_name(prefix: str, variable: str) -> str:
    return parameter_name(prefix, f"{ENV_PATH}/{variable}")
