"""The SSM parameters a GPU host reads at boot, relative to the hosts' prefix.

The CDK app writes them (infra/), the host reads them (bootstrap.sh, render_config,
lifecycle); both take the names from here. Every host of the fleet reads the same prefix:
what differs per host (its id) comes from instance metadata, never from SSM.

Importable by the host's system Python (3.9) without the release installed: the lifecycle
agent runs before it (`lifecycle.py`); keep this module standard-library only.
"""

from __future__ import annotations

from typing import Final

ENV_PATH: Final = "env"
"""`<prefix>/env/SPINUP_FOO` holds the value of `SPINUP_FOO` in the host's environment file."""
RELEASE: Final = "release"
"""S3 URL of the release to install (`s3://<bucket>/<asset hash>.zip`)."""
ORIGIN_PORT: Final = "origin-port"
ORIGIN_SECRET_ARN: Final = "origin-verify-secret-arn"
TICKET_SECRET_ARN: Final = "ticket-secret-arn"
"""ARN of the secret that signs socket tickets; its value becomes `SPINUP_TICKET_SECRET`."""
TICKET_SECRET_ENV: Final = "SPINUP_TICKET_SECRET"
HOST_ID_ENV: Final = "SPINUP_HOST_ID"
"""Set by render_config from instance metadata (the instance id), never published in SSM."""
FLEET_GROUP_NAME: Final = "group-name"
"""Name of the hosts' Auto Scaling group (the lifecycle agent completes its launch hook)."""
FLEET_LAUNCH_HOOK_NAME: Final = "launch-hook-name"
"""Name of the group's launch lifecycle hook (autoscaling:EC2_INSTANCE_LAUNCHING)."""


REQUIRED_ENV: Final = (
    "SPINUP_TABLE_NAME",
    "SPINUP_JWKS_URL",
    "SPINUP_JWT_ISSUER",
    "SPINUP_ALLOWED_ORIGINS",
)
"""The host's settings without which it cannot serve (`<prefix>/env/<name>`): the control
table (host record, watchdog), the token issuer and the browser origins. Other stacks than the
GPU host's publish some of them, so a host may boot before they exist: the config renderer
waits for them (`render_config.missing_settings`)."""
REQUIRED: Final = (ORIGIN_PORT, ORIGIN_SECRET_ARN, TICKET_SECRET_ARN)
"""The parameters outside `env/` that the config renderer needs."""


def parameter_name(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


def env_parameter_name(prefix: str, variable: str) -> str:
    return parameter_name(prefix, f"{ENV_PATH}/{variable}")
