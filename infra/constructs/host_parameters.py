"""SSM parameters the GPU instance reads at every boot (`spinup-config.service`).

`<prefix>/env/<NAME>` becomes `NAME=value` in the host's environment file, so each stack can
publish what it owns (the table, the issuer, the allowed origin) without the instance's stack
depending on it. Values change take effect at the next start of the instance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from gpu_host.bootstrap.parameters import env_parameter_name

_ENV_NAME = re.compile(r"^SPINUP_[A-Z0-9_]+$")


class HostParameters(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, env: Mapping[str, str]
    ) -> None:
        super().__init__(scope, construct_id)
        for name, value in env.items():
            if not _ENV_NAME.match(name):
                raise ValueError(f"host environment names must look like SPINUP_FOO, got {name!r}")
            ssm.StringParameter(
                self,
                name,
                parameter_name=env_parameter_name(prefix, name),
                string_value=value,
                description=f"GPU host environment: {name}",
            )
