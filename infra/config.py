"""Every name, port, size and timeout of the AWS deployment, in one place.

The CDK app builds one `DeployConfig` from CDK context (`cdk.json` or `-c key=value`) and
passes it down; constructs never read context or the environment themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aws_cdk import aws_logs as logs

from gpu_host.bootstrap import parameters as host_parameters
from gpu_host.models.spec import SPECS

DLAMI_SSM_PARAMETER: Final = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
)
"""Public SSM parameter of "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04)".

AWS names these `/aws/service/deeplearning/ami/<arch>/<AMI name without "deep learning ami">/
latest/ami-id`; the image ships the NVIDIA driver, Docker and the NVIDIA container toolkit."""

CLOUDFRONT_ORIGIN_FACING_PREFIX_LIST: Final = "com.amazonaws.global.cloudfront.origin-facing"

DEFAULT_SERVED_MODELS: Final = tuple(SPECS)

CONTEXT_PREFIX: Final = "spinup:"
"""CDK context keys this app reads, e.g. `-c spinup:instanceTypes=g5.xlarge,g4dn.xlarge`."""

_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_PREFIX_LIST_ID = re.compile(r"^pl-[0-9a-f]{8,17}$")
_AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
_AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,20}$")


class ConfigError(ValueError):
    """A context value is malformed; the message names the key and what was expected."""


@dataclass(frozen=True, kw_only=True)
class ControlTimeouts:
    """The control plane's `SPINUP_*` timing settings (see docs/architecture.md)."""

    idle_after_disconnect_s: int = 300
    idle_while_connected_s: int = 900
    boot_grace_s: int = 1200
    release_grace_s: int = 60
    max_run_s: int = 28_800
    daily_gpu_hours: int = 12
    max_sessions_per_user: int = 2


@dataclass(frozen=True, kw_only=True)
class SignInLifetimes:
    """How long Cognito's tokens for the browser last (docs/architecture.md, "Sign-in")."""

    token_minutes: int = 60
    """ID and access tokens; the browser renews them before they end."""
    refresh_hours: int = 12
    """A refresh token (Cognito allows 1 h to 10 years). Short, because a browser holds it:
    RFC 9700 asks public clients for rotation or sender-constraining, and a short life."""
    rotation_grace_s: int = 0
    """How long a rotated-out refresh token still works (Cognito: 0-60 s). 0: never, so a
    copied token is useless once the browser has renewed."""


@dataclass(frozen=True, kw_only=True)
class DeployConfig:
    app_name: str = "spinup"
    host_id: str = "gpu-0"
    instance_types: tuple[str, ...] = ("g4dn.xlarge", "g5.xlarge", "g6.xlarge")
    """The first is launched; the rest are the capacity fallback list, in order."""
    availability_zone: str | None = None
    """None: the region's first AZ (`Fn::GetAZs`), which keeps the app environment-agnostic."""
    root_volume_gib: int = 150
    """The DLAMI's own root, the Triton image, the Python environment and models, headroom."""
    machine_image_ssm_parameter: str = DLAMI_SSM_PARAMETER
    machine_image_id: str | None = None
    """None: the latest DLAMI at each deploy (a newer one replaces the instance); set it to pin."""
    vpc_cidr: str = "10.42.0.0/24"

    origin_port: int = 80
    """CloudFront reaches nginx here. HTTP: CloudFront accepts only origin certificates from a
    public CA for the origin's name, and an EC2 public DNS name cannot get one
    (docs/operations.md)."""
    origin_verify_header: str = "X-Origin-Verify"
    cloudfront_prefix_list_id: str | None = None
    """None: looked up at deploy time by a custom resource; set it to skip the lookup."""

    api_path_prefix: str = "/api"
    ws_path: str = "/ws/inference"
    health_path: str = "/health"

    triton_grpc_port: int = 8001
    served_models: tuple[str, ...] = DEFAULT_SERVED_MODELS
    """What the instance's Triton loads and the backend serves (`SPINUP_MODELS`)."""

    api_rate_limit: int = 20
    """Requests per second across the HTTP API (every call may reconcile): a cost guard."""
    api_burst_limit: int = 40

    lambda_memory_mb: int = 512
    control_timeout_s: int = 15
    reconcile_timeout_s: int = 60
    reconcile_period_minutes: int = 1
    reconcile_silence_alarm_minutes: int = 5
    """The "reconcile stopped running" alarm fires after this many minutes without one."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    access_log_days: int = 90
    timeouts: ControlTimeouts = field(default_factory=ControlTimeouts)
    sign_in: SignInLifetimes = field(default_factory=SignInLifetimes)

    @property
    def ssm_prefix(self) -> str:
        """SSM path holding the instance's runtime configuration (read at every boot)."""
        return f"/{self.app_name}/{self.host_id}"

    @property
    def instance_type(self) -> str:
        return self.instance_types[0]

    @property
    def host_path_patterns(self) -> tuple[str, ...]:
        """CloudFront path patterns the GPU host serves: the socket and the health checks."""
        socket_dir = self.ws_path.rsplit("/", 1)[0]
        return (f"{socket_dir}/*", self.health_path, f"{self.health_path}/*")


def config_from_context(context: Mapping[str, Any]) -> DeployConfig:
    """Build the config from CDK context values (strings from `-c`, or JSON from cdk.json).

    Only the keys an operator plausibly changes per deployment are exposed; unknown
    `spinup:` keys are an error so that a typo does not silently deploy the default.
    """
    known = {
        "appName",
        "hostId",
        "instanceTypes",
        "availabilityZone",
        "rootVolumeGiB",
        "cloudfrontPrefixListId",
        "amiId",
    }
    ours = {
        k.removeprefix(CONTEXT_PREFIX): v
        for k, v in context.items()
        if k.startswith(CONTEXT_PREFIX)
    }
    unknown = sorted(set(ours) - known)
    if unknown:
        raise ConfigError(f"unknown context keys {unknown}; known: {sorted(known)}")

    defaults = DeployConfig()
    return DeployConfig(
        app_name=_app_name(ours.get("appName", defaults.app_name)),
        host_id=_host_id(ours.get("hostId", defaults.host_id)),
        instance_types=_instance_types(ours.get("instanceTypes", defaults.instance_types)),
        availability_zone=_optional_match(
            ours.get("availabilityZone"), _AVAILABILITY_ZONE, "availabilityZone", "us-east-1a"
        ),
        root_volume_gib=_volume(ours.get("rootVolumeGiB", defaults.root_volume_gib)),
        machine_image_id=_optional_match(
            ours.get("amiId"), _AMI_ID, "amiId", "ami-0123456789abcdef0"
        ),
        cloudfront_prefix_list_id=_optional_match(
            ours.get("cloudfrontPrefixListId"),
            _PREFIX_LIST_ID,
            "cloudfrontPrefixListId",
            "pl-3b927c52",
        ),
    )


def _app_name(value: object) -> str:
    if not isinstance(value, str) or not _APP_NAME.match(value):
        raise ConfigError(f"spinup:appName must match {_APP_NAME.pattern}, got {value!r}")
    return value


def _host_id(value: object) -> str:
    if not isinstance(value, str) or not _APP_NAME.match(value):
        raise ConfigError(f"spinup:hostId must match {_APP_NAME.pattern}, got {value!r}")
    return value


def _instance_types(value: object) -> tuple[str, ...]:
    items: list[object]
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigError(
            f"spinup:instanceTypes must be a list or a comma-separated string, got {value!r}"
        )
    bad = [item for item in items if not isinstance(item, str) or not _INSTANCE_TYPE.match(item)]
    if not items or bad:
        raise ConfigError(
            "spinup:instanceTypes must name at least one EC2 instance type like 'g5.xlarge'; "
            f"bad: {bad or value!r}"
        )
    if len(set(items)) != len(items):
        raise ConfigError(f"spinup:instanceTypes lists a type twice: {items}")
    return tuple(str(item) for item in items)


def _volume(value: object) -> int:
    try:
        size = int(str(value))
    except ValueError:
        raise ConfigError(f"spinup:rootVolumeGiB must be an integer, got {value!r}") from None
    if not 100 <= size <= 2000:
        raise ConfigError(f"spinup:rootVolumeGiB must be within 100..2000 GiB, got {size}")
    return size


def _optional_match(value: object, pattern: re.Pattern[str], key: str, example: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigError(f"spinup:{key} must look like {example!r}, got {value!r}")
    return value


def release_parameter(ssm_prefix: str) -> str:
    """SSM parameter holding the S3 URL of the release the GPU host installs."""
    return host_parameters.parameter_name(ssm_prefix, host_parameters.RELEASE)


def origin_secret_parameter(ssm_prefix: str) -> str:
    """SSM parameter holding the ARN of the X-Origin-Verify secret."""
    return host_parameters.parameter_name(ssm_prefix, host_parameters.ORIGIN_SECRET_ARN)


def origin_port_parameter(ssm_prefix: str) -> str:
    """SSM parameter holding the port nginx listens on for CloudFront."""
    return host_parameters.parameter_name(ssm_prefix, host_parameters.ORIGIN_PORT)


def origin_dns_name_parameter(ssm_prefix: str) -> str:
    """SSM parameter holding the Elastic IP's public DNS name (CloudFront's origin)."""
    return host_parameters.parameter_name(ssm_prefix, host_parameters.ORIGIN_DNS_NAME)
