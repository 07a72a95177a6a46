"""Every name, port and size of the AWS deployment, in one place. The control plane's timeouts,
limits and instance types are defined by its settings model (`lambdas.settings.Settings`);
this config only carries a deployment's overrides of them.

The CDK app builds one `DeployConfig` from CDK context (`cdk.json` or `-c key=value`) and
passes it down; constructs never read context or the environment themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aws_cdk import aws_logs as logs
from pydantic import BaseModel, TypeAdapter, ValidationError, create_model

from gpu_host.backend.settings import Settings as HostSettings
from gpu_host.backend.settings import startup_models
from gpu_host.bootstrap import parameters as host_parameters
from gpu_host.models.spec import BUILTIN_SPECS, model_catalog
from gpu_host.models.user_models import UserModel, read_user_models
from lambdas.domain.routing import WS_PREFIX
from lambdas.settings import DEFAULT_INSTANCE_TYPES, Settings
from lambdas.settings_types import InstanceTypes

HOST_AMI_SSM_PARAMETER: Final = (
    "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
)
"""Public SSM parameter of the Amazon ECS GPU-optimized Amazon Linux 2023 AMI: the NVIDIA
driver, Docker and the NVIDIA container toolkit on a 30 GiB root snapshot (`/dev/xvda`), with
dnf as its package manager
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/retrieve-ecs-optimized_AMI.html).
Chosen over the Deep Learning Base AMI because a root volume cannot be smaller than its image's
snapshot, and the DLAMI's (several CUDA toolkits, 75 GiB and more) alone would cost more than
the idle budget (docs/operations.md, "Costs")."""

DLAMI_SSM_PARAMETER: Final = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
)
"""Public SSM parameter of "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04)", the
image before `HOST_AMI_SSM_PARAMETER`; it needs a root volume of at least its snapshot."""

CLOUDFRONT_ORIGIN_FACING_PREFIX_LIST: Final = "com.amazonaws.global.cloudfront.origin-facing"

DEFAULT_SERVED_MODELS: Final = tuple(BUILTIN_SPECS)

CONTEXT_PREFIX: Final = "spinup:"
"""CDK context keys this app reads, e.g. `-c spinup:instanceTypes=g5.xlarge,g4dn.xlarge`."""

FLEET_TAG_KEY: Final = "spinup:fleet"
"""Tag on the GPU fleet's Auto Scaling group (value: the app name), propagated to its instances.
IAM scopes every Auto Scaling action on the group by it (`autoscaling:ResourceTag/…`)."""

MAX_FLEET_SIZE: Final = 20
"""Upper bound of `spinup:maxHosts`: a typo must not be able to buy a hundred GPUs."""

MIN_ZONES: Final = 2
"""The fleet spans the public subnets of at least this many availability zones, so that a zone
without capacity for the instance types is not the end of a start."""

_PREFIX_LIST_ID = re.compile(r"^pl-[0-9a-f]{8,17}$")
_AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
_AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,20}$")


class ConfigError(ValueError):
    """A context value is malformed; the message names the key and what was expected."""


CONTROL_TUNABLES: Final = (
    "idle_after_disconnect_s",
    "idle_while_connected_s",
    "boot_grace_s",
    "release_grace_s",
    "max_run_s",
    "daily_gpu_hours",
    "max_sessions_per_user",
    "sessions_per_host",
    "max_replacements",
)
"""The control plane's settings a deployment may change (`spinup:controlSettings`). Their
defaults are `lambdas.settings.Settings`' own: this app never restates them."""

HOST_TUNABLES: Final = (
    "default_models",
    "max_loaded_models",
    "frame_budget_ms",
    "motion_gate",
    "motion_threshold",
)
"""The GPU hosts' backend settings a deployment may change (`spinup:hostSettings`), published
as `SPINUP_<NAME>` in the hosts' environment. Their defaults are
`gpu_host.backend.settings.Settings`' own: this app never restates them."""

_INSTANCE_TYPES: TypeAdapter[tuple[str, ...]] = TypeAdapter(InstanceTypes)


def _tunables_model(
    name: str, settings: type[BaseModel], tunables: tuple[str, ...]
) -> type[BaseModel]:
    """A model of `tunables`' fields exactly as `settings` declares them (types, bounds,
    defaults), without its cross-field checks."""
    fields: dict[str, Any] = {
        field: (settings.model_fields[field].annotation, settings.model_fields[field])
        for field in tunables
    }
    return create_model(name, **fields)


_TUNABLES = _tunables_model("ControlTunables", Settings, CONTROL_TUNABLES)
_HOST_TUNABLES = _tunables_model("HostTunables", HostSettings, HOST_TUNABLES)


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
    instance_types: tuple[str, ...] = DEFAULT_INSTANCE_TYPES
    """The group's types in its order of preference: the first is the launch template's, the
    rest are what the group launches when a zone has no capacity for the ones before."""
    max_hosts: int = 2
    """The group's maximum size (`spinup:maxHosts`): how many GPUs may run at once."""
    warm_hosts: int = 1
    """Stopped, pre-initialized hosts kept in the warm pool (`spinup:warmHosts`); each one's
    root volume is paid for while it waits. 0: no warm pool, every start is a cold launch."""
    launch_hook_heartbeat_s: int = 900
    """How long a host may stay paused in the launch hook without a heartbeat before the group
    abandons (terminates) it; the host sends heartbeats while it initializes."""
    availability_zones: tuple[str, ...] | None = None
    """None: the region's first `MIN_ZONES` zones (`Fn::GetAZs`), which keeps the app
    environment-agnostic; else at least `MIN_ZONES` zones of one region."""
    root_volume_gib: int = 40
    """What initialize leaves on the root volume (the AMI's own ~6 GiB, the Triton image
    ~17 GiB, the backend's image, models, TensorRT engines, logs) plus room for an image pull:
    estimates until a first deploy confirms them (docs/operations.md, "Costs"). Every warm host
    pays for it while stopped, so it is what keeps the idle cost under $5/month."""
    machine_image_ssm_parameter: str = HOST_AMI_SSM_PARAMETER
    machine_image_id: str | None = None
    """None: the image `machine_image_ssm_parameter` names at each deploy (a new launch
    template version, used by the instances launched after it); set it to pin."""
    vpc_cidr: str = "10.42.0.0/24"

    origin_port: int = 80
    """CloudFront reaches nginx here. HTTP: CloudFront accepts only origin certificates from a
    public CA for the origin's name, and an EC2 public DNS name cannot get one
    (docs/operations.md)."""
    origin_verify_header: str = "X-Origin-Verify"
    cloudfront_prefix_list_id: str | None = None
    """None: looked up at deploy time by a custom resource; set it to skip the lookup."""

    api_path_prefix: str = "/api"

    require_tickets: bool = True
    """The host refuses a WebSocket hello that carries a sign-in token instead of a socket
    ticket (`SPINUP_REQUIRE_TICKETS`). Off only for clients of protocol v1 as first written."""
    triton_http_port: int = 8000
    """Triton's HTTP port on the host (systemd/spinup-triton.service); the backend calls it."""
    served_models: tuple[str, ...] = DEFAULT_SERVED_MODELS
    """What the instance's Triton loads and the backend serves (`SPINUP_MODELS`);
    `config_from_context` adds the user's own models (docs/models.md), which the release
    carries."""
    user_models: tuple[UserModel, ...] = ()
    """The user's own models as declared (`config_from_context` reads them): config.json
    offers the UI those that are served."""

    api_rate_limit: int = 20
    """Requests per second across the HTTP API (every call may reconcile): a cost guard."""
    api_burst_limit: int = 40

    lambda_memory_mb: int = 512
    control_timeout_s: int = 15
    reconcile_timeout_s: int = 60
    reconcile_period_minutes: int = 1
    reconcile_silence_alarm_minutes: int = 5
    """The "reconcile stopped running" alarm fires after this many minutes without one."""
    replace_loop_alarm_launches: int = 2
    replace_loop_alarm_hours: int = 2
    """The replace-loop alarm fires when more than `replace_loop_alarm_launches` launches of
    the fleet fail within `replace_loop_alarm_hours` (an initialize abandoned, a host never
    ready, no capacity): a failure and its retry are not a loop; three in two hours are."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    access_log_days: int = 90
    control_settings: Mapping[str, object] = field(default_factory=dict)
    """Overrides of `CONTROL_TUNABLES` by settings field name, already validated."""
    host_settings: Mapping[str, object] = field(default_factory=dict)
    """Overrides of `HOST_TUNABLES` by settings field name, already validated against the
    served models."""
    sign_in: SignInLifetimes = field(default_factory=SignInLifetimes)

    @property
    def ssm_prefix(self) -> str:
        """SSM path holding the GPU hosts' runtime configuration, the same for every host of
        the fleet (read at every boot)."""
        return f"/{self.app_name}/fleet"

    @property
    def instance_type(self) -> str:
        """The launch template's type."""
        return self.instance_types[0]

    @property
    def group_name(self) -> str:
        """The fleet's Auto Scaling group, named so that IAM policies and the hosts' settings
        can name it without a reference to the group's stack."""
        return f"{self.app_name}-gpu-fleet"

    @property
    def launch_hook_name(self) -> str:
        """The group's launch lifecycle hook, which a host completes when it is ready."""
        return f"{self.app_name}-host-launch"

    def control_values(self) -> dict[str, object]:
        """Every tunable as the Lambdas get it: this deployment's override, or the default of
        `lambdas.settings.Settings`."""
        return {
            name: self.control_settings.get(name, Settings.model_fields[name].default)
            for name in CONTROL_TUNABLES
        }

    def host_env(self) -> dict[str, str]:
        """`host_settings` as the hosts' environment file spells them (`SPINUP_<NAME>`)."""
        return {
            f"SPINUP_{name.upper()}": _env_value(value)
            for name, value in self.host_settings.items()
        }

    @property
    def ws_path_pattern(self) -> str:
        """The CloudFront path pattern of every routed host path (`/ws/<host>/…`)."""
        return f"{WS_PREFIX}*"

    def ws_base_url(self, domain_name: str) -> str:
        """The sockets' URL without the host (`SPINUP_WS_BASE_URL`): a session on host H
        connects to `<this>/H/inference` (`lambdas.domain.routing`)."""
        return f"wss://{domain_name}{WS_PREFIX.rstrip('/')}"


def config_from_context(context: Mapping[str, Any], *, user_models: Path | None) -> DeployConfig:
    """Build the config from CDK context values (strings from `-c`, or JSON from cdk.json),
    serving every model of the catalog that `user_models` completes (None: the built-in
    models only). No default: the caller says whether the checkout's own models count.

    Only the keys an operator plausibly changes per deployment are exposed; unknown
    `spinup:` keys are an error so that a typo does not silently deploy the default.
    """
    known = {
        "appName",
        "instanceTypes",
        "maxHosts",
        "warmHosts",
        "availabilityZones",
        "rootVolumeGiB",
        "cloudfrontPrefixListId",
        "amiId",
        "requireTickets",
        "controlSettings",
        "hostSettings",
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
    max_hosts = _count(ours.get("maxHosts", defaults.max_hosts), "maxHosts", 1, MAX_FLEET_SIZE)
    return DeployConfig(
        app_name=_app_name(ours.get("appName", defaults.app_name)),
        instance_types=_instance_types(ours.get("instanceTypes", defaults.instance_types)),
        max_hosts=max_hosts,
        warm_hosts=_count(ours.get("warmHosts", defaults.warm_hosts), "warmHosts", 0, max_hosts),
        availability_zones=_zones(ours.get("availabilityZones")),
        root_volume_gib=_volume(ours.get("rootVolumeGiB", defaults.root_volume_gib)),
        served_models=tuple(model_catalog(user_models)),
        user_models=read_user_models(user_models) if user_models is not None else (),
        machine_image_id=_optional_match(
            ours.get("amiId"), _AMI_ID, "amiId", "ami-0123456789abcdef0"
        ),
        require_tickets=_flag(
            ours.get("requireTickets", defaults.require_tickets), "requireTickets"
        ),
        cloudfront_prefix_list_id=_optional_match(
            ours.get("cloudfrontPrefixListId"),
            _PREFIX_LIST_ID,
            "cloudfrontPrefixListId",
            "pl-3b927c52",
        ),
        control_settings=_settings_object(
            ours.get("controlSettings", {}), "controlSettings", _TUNABLES, CONTROL_TUNABLES
        ),
        host_settings=_host_settings(ours.get("hostSettings", {}), user_models),
    )


def _app_name(value: object) -> str:
    if not isinstance(value, str) or not _APP_NAME.match(value):
        raise ConfigError(f"spinup:appName must match {_APP_NAME.pattern}, got {value!r}")
    return value


def _count(value: object, key: str, low: int, high: int) -> int:
    """A whole number within low..high, from cdk.json (a number) or `-c` (its text)."""
    if isinstance(value, bool):
        raise ConfigError(f"spinup:{key} must be an integer, got {value!r}")
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigError(f"spinup:{key} must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"spinup:{key} must be within {low}..{high}, got {number}")
    return number


def _zones(value: object) -> tuple[str, ...] | None:
    """Availability zones as a list (cdk.json) or comma-separated text (`-c`): at least
    `MIN_ZONES` distinct zones of one region; None or empty: the region's first ones."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        value = [zone.strip() for zone in value.split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(z, str) for z in value):
        raise ConfigError(
            f"spinup:availabilityZones must be a comma-separated string or a list, got {value!r}"
        )
    zones = tuple(value)
    bad = [zone for zone in zones if not _AVAILABILITY_ZONE.match(zone)]
    if bad:
        raise ConfigError(f"spinup:availabilityZones must look like 'us-east-1a', got {bad}")
    if len(set(zones)) != len(zones):
        raise ConfigError(f"spinup:availabilityZones names a zone twice: {list(zones)}")
    if len(zones) < MIN_ZONES:
        raise ConfigError(
            f"spinup:availabilityZones needs at least {MIN_ZONES} zones, got {list(zones)}"
        )
    if len({zone[:-1] for zone in zones}) != 1:
        raise ConfigError(f"spinup:availabilityZones must be of one region, got {list(zones)}")
    return zones


def _instance_types(value: object) -> tuple[str, ...]:
    try:
        return _INSTANCE_TYPES.validate_python(value)
    except ValidationError as error:
        raise ConfigError(f"spinup:instanceTypes: {_reasons(error)}") from None


def _settings_object(
    value: object, key: str, model: type[BaseModel], tunables: tuple[str, ...]
) -> dict[str, object]:
    """`{"idle_after_disconnect_s": 600, …}` (a JSON object, or its text from `-c`), checked by
    the owning process's own fields, so that a bad value fails the synth, not the Lambda or
    the host."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigError(f"spinup:{key} is not JSON: {error}") from None
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"spinup:{key} must be an object of settings, got {value!r}; "
            f"known: {', '.join(tunables)}"
        )
    unknown = sorted(set(value) - set(tunables))
    if unknown:
        raise ConfigError(f"spinup:{key}: unknown settings {unknown}; known: {', '.join(tunables)}")
    try:
        checked = model.model_validate(value)
    except ValidationError as error:
        raise ConfigError(f"spinup:{key}: {_reasons(error)}") from None
    return checked.model_dump(exclude_unset=True)


def _host_settings(value: object, user_models: Path | None) -> dict[str, object]:
    """`spinup:hostSettings`, checked field by field and against the served models: the
    default models must be served, and the model budget must hold the start-up models."""
    settings = _settings_object(value, "hostSettings", _HOST_TUNABLES, HOST_TUNABLES)
    catalog = model_catalog(user_models)
    served = tuple(catalog)
    defaults = settings.get("default_models", HostSettings.model_fields["default_models"].default)
    assert isinstance(defaults, tuple)
    unknown = [name for name in defaults if name not in catalog]
    if unknown:
        raise ConfigError(
            f"spinup:hostSettings: default_models: unknown models {unknown}; served: {list(served)}"
        )
    budget = settings.get("max_loaded_models")
    startup = startup_models(served, defaults, catalog)
    if isinstance(budget, int) and budget < len(startup):
        raise ConfigError(
            f"spinup:hostSettings: max_loaded_models {budget} < the {len(startup)} start-up "
            f"models {list(startup)}"
        )
    return settings


def _env_value(value: object) -> str:
    """A setting's value as an environment file carries it (what the host's settings parse)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


def _reasons(error: ValidationError) -> str:
    """pydantic's errors as `where: why; …` (`where` for a field or a list item)."""
    reasons = []
    for problem in error.errors():
        why = str(problem["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in problem["loc"])
        reasons.append(f"{where}: {why}" if where else why)
    return "; ".join(reasons)


def _volume(value: object) -> int:
    try:
        size = int(str(value))
    except ValueError:
        raise ConfigError(f"spinup:rootVolumeGiB must be an integer, got {value!r}") from None
    # 30 GiB: the host image's root snapshot; a volume cannot be smaller.
    if not 30 <= size <= 2000:
        raise ConfigError(f"spinup:rootVolumeGiB must be within 30..2000 GiB, got {size}")
    return size


def _flag(value: object, key: str) -> bool:
    """A boolean from cdk.json (true/false) or `-c` (the strings "true"/"false")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"spinup:{key} must be true or false, got {value!r}")


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


def group_name_parameter(ssm_prefix: str) -> str:
    """SSM parameter holding the name of the fleet's Auto Scaling group (for the host's
    `CompleteLifecycleAction` and `RecordLifecycleActionHeartbeat`)."""
    return host_parameters.parameter_name(ssm_prefix, host_parameters.FLEET_GROUP_NAME)


def launch_hook_parameter(ssm_prefix: str) -> str:
    """SSM parameter holding the name of the group's launch lifecycle hook, which a host
    completes (CONTINUE) once it is initialized (entering the warm pool) or ready (starting)."""
    return host_parameters.parameter_name(ssm_prefix, host_parameters.FLEET_LAUNCH_HOOK_NAME)
