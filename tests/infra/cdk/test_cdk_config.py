"""DeployConfig from CDK context: defaults, overrides, and a clear error for each bad value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpu_host.backend.settings import Settings as BackendSettings
from gpu_host.models.spec import BUILTIN_SPECS
from infra.config import (
    CONTROL_TUNABLES,
    MIN_ZONES,
    ConfigError,
    DeployConfig,
    config_from_context,
)
from lambdas.settings import Settings


def config_from(context: dict[str, Any]) -> DeployConfig:
    """`config_from_context` without user models, whatever the checkout's
    `gpu_host/models/user/` holds."""
    return config_from_context(context, user_models=None)


def test_no_context_gives_the_defaults() -> None:
    assert config_from({}) == DeployConfig()
    assert DeployConfig().served_models == tuple(BUILTIN_SPECS)


def test_the_users_declared_models_are_served_too(tmp_path: Path) -> None:
    (tmp_path / "mine.onnx").write_bytes(b"onnx")
    mine = {"name": "mine", "file": "mine.onnx", "layout": "yolov8-detect", "input_size": 64}
    (tmp_path / "user_models.json").write_text(json.dumps({"models": [mine]}))
    config = config_from_context({}, user_models=tmp_path / "user_models.json")
    assert config.served_models == (*BUILTIN_SPECS, "mine")


def test_defaults_launch_g4dn_with_fallbacks() -> None:
    config = DeployConfig()
    assert config.instance_type == "g4dn.xlarge"
    assert len(config.instance_types) > 1
    assert config.ssm_prefix == "/spinup/fleet"


def test_defaults_are_a_fleet_of_two_with_one_warm_host_over_two_zones() -> None:
    config = DeployConfig()
    assert (config.max_hosts, config.warm_hosts) == (2, 1)
    assert config.availability_zones is None  # the region's first MIN_ZONES zones
    assert MIN_ZONES == 2
    assert config.group_name == "spinup-gpu-fleet"
    assert config.launch_hook_name == "spinup-host-launch"
    assert config.ws_path_pattern == "/ws/*"
    assert config.ws_base_url("d1.cloudfront.net") == "wss://d1.cloudfront.net/ws"


def test_the_control_plane_defaults_are_its_own() -> None:
    """Given no overrides, the Lambdas get the defaults of the control plane's settings model
    (lambdas/settings.py), which this app does not restate."""
    config = DeployConfig()
    assert config.instance_types == Settings.model_fields["instance_types"].default
    assert config.control_values() == {
        name: Settings.model_fields[name].default for name in CONTROL_TUNABLES
    }


OVERRIDES = {"idle_after_disconnect_s": 600, "daily_gpu_hours": 1.5}

HOST_OVERRIDES = {"default_models": "face,segment", "max_loaded_models": 3, "motion_gate": True}


@pytest.mark.parametrize(
    "value", [HOST_OVERRIDES, json.dumps(HOST_OVERRIDES)], ids=["cdk.json", "-c"]
)
def test_host_settings_reach_the_hosts_environment_as_they_parse(value: object) -> None:
    """Given backend overrides in `spinup:hostSettings`, then the hosts' environment carries
    exactly those, spelled as the backend's settings read them back."""
    env = config_from({"spinup:hostSettings": value}).host_env()
    assert env == {
        "SPINUP_DEFAULT_MODELS": "face,segment",
        "SPINUP_MAX_LOADED_MODELS": "3",
        "SPINUP_MOTION_GATE": "true",
    }
    parsed = BackendSettings.model_validate(
        {name.removeprefix("SPINUP_").lower(): text for name, text in env.items()}
        | {"jwks_url": "https://issuer.example/jwks.json", "jwt_issuer": "issuer"}
        # The built-in models only, whatever the checkout's gpu_host/models/user/ declares.
        | {"user_models": None}
    )
    assert (parsed.default_models, parsed.max_loaded_models, parsed.motion_gate) == (
        ("face", "segment"),
        3,
        True,
    )


def test_no_host_settings_leave_the_backend_defaults() -> None:
    assert config_from({}).host_env() == {}


@pytest.mark.parametrize("value", [OVERRIDES, json.dumps(OVERRIDES)], ids=["cdk.json", "-c"])
def test_control_settings_override_only_what_they_name(value: object) -> None:
    config = config_from({"spinup:controlSettings": value})
    values = config.control_values()
    assert values["idle_after_disconnect_s"] == 600
    assert values["daily_gpu_hours"] == 1.5
    assert values["boot_grace_s"] == Settings.model_fields["boot_grace_s"].default


@pytest.mark.parametrize(
    ("context", "attribute", "expected"),
    [
        (
            {"spinup:instanceTypes": "g5.xlarge,g6.xlarge"},
            "instance_types",
            ("g5.xlarge", "g6.xlarge"),
        ),
        ({"spinup:instanceTypes": ["g6.xlarge"]}, "instance_types", ("g6.xlarge",)),
        ({"spinup:rootVolumeGiB": "200"}, "root_volume_gib", 200),
        (
            {"spinup:availabilityZones": "eu-west-1b,eu-west-1c"},
            "availability_zones",
            ("eu-west-1b", "eu-west-1c"),
        ),
        (
            {"spinup:availabilityZones": ["us-east-1a", "us-east-1b", "us-east-1d"]},
            "availability_zones",
            ("us-east-1a", "us-east-1b", "us-east-1d"),
        ),
        ({"spinup:availabilityZones": ""}, "availability_zones", None),
        ({"spinup:maxHosts": "4"}, "max_hosts", 4),
        ({"spinup:maxHosts": 1, "spinup:warmHosts": 0}, "warm_hosts", 0),
        ({"spinup:maxHosts": 3, "spinup:warmHosts": "3"}, "warm_hosts", 3),
        ({"spinup:appName": "demo"}, "group_name", "demo-gpu-fleet"),
        (
            {"spinup:cloudfrontPrefixListId": "pl-3b927c52"},
            "cloudfront_prefix_list_id",
            "pl-3b927c52",
        ),
        ({"spinup:amiId": "ami-0123456789abcdef0"}, "machine_image_id", "ami-0123456789abcdef0"),
        ({"spinup:appName": "demo"}, "ssm_prefix", "/demo/fleet"),
        ({"unrelated": "x"}, "app_name", "spinup"),
        ({"spinup:requireTickets": "false"}, "require_tickets", False),
        ({"spinup:requireTickets": False}, "require_tickets", False),
        ({"spinup:requireTickets": "TRUE"}, "require_tickets", True),
    ],
)
def test_context_overrides(context: dict[str, Any], attribute: str, expected: object) -> None:
    assert getattr(config_from(context), attribute) == expected


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"spinup:instanceType": "g5.xlarge"}, "unknown context keys"),
        ({"spinup:instanceTypes": ""}, "instanceTypes: name at least one instance type"),
        ({"spinup:instanceTypes": "g5.xlarge,G5"}, "not an EC2 instance type: G5"),
        ({"spinup:instanceTypes": "g5.xlarge,g5.xlarge"}, "twice"),
        ({"spinup:instanceTypes": 5}, "a comma-separated string or a list"),
        ({"spinup:controlSettings": "{"}, "controlSettings is not JSON"),
        ({"spinup:controlSettings": "[1]"}, "must be an object"),
        ({"spinup:controlSettings": {"idle_s": 1}}, "unknown settings .'idle_s'."),
        (
            {"spinup:controlSettings": {"instance_id": "i-1"}},
            "unknown settings .'instance_id'.",
        ),
        ({"spinup:controlSettings": {"boot_grace_s": 0}}, "boot_grace_s: .*greater than or equal"),
        ({"spinup:controlSettings": {"daily_gpu_hours": 25}}, "daily_gpu_hours: .*less than"),
        ({"spinup:hostSettings": "{"}, "hostSettings is not JSON"),
        ({"spinup:hostSettings": [1]}, "hostSettings must be an object"),
        ({"spinup:hostSettings": {"workers": 2}}, "unknown settings .'workers'."),
        ({"spinup:hostSettings": {"max_loaded_models": 0}}, "max_loaded_models: .*greater than"),
        ({"spinup:hostSettings": {"motion_threshold": 300}}, "motion_threshold: .*less than"),
        ({"spinup:hostSettings": {"default_models": "face,nails"}}, "unknown models .'nails'."),
        (
            {"spinup:hostSettings": {"default_models": "detect,pose", "max_loaded_models": 1}},
            "max_loaded_models 1 < the 2 start-up models",
        ),
        ({"spinup:rootVolumeGiB": "big"}, "must be an integer"),
        ({"spinup:rootVolumeGiB": 20}, "within 30..2000"),
        ({"spinup:hostId": "gpu-1"}, "unknown context keys"),
        ({"spinup:availabilityZone": "us-east-1a"}, "unknown context keys"),
        ({"spinup:availabilityZones": "us-east-1a"}, "at least 2 zones"),
        ({"spinup:availabilityZones": "us-east-1,us-east-1b"}, "must look like"),
        ({"spinup:availabilityZones": "us-east-1a,us-east-1a"}, "names a zone twice"),
        ({"spinup:availabilityZones": "us-east-1a,eu-west-1a"}, "of one region"),
        ({"spinup:availabilityZones": 3}, "a comma-separated string or a list"),
        ({"spinup:maxHosts": 0}, "maxHosts must be within 1..20"),
        ({"spinup:maxHosts": 21}, "maxHosts must be within 1..20"),
        ({"spinup:maxHosts": "two"}, "maxHosts must be an integer"),
        ({"spinup:maxHosts": True}, "maxHosts must be an integer"),
        ({"spinup:warmHosts": 3}, "warmHosts must be within 0..2"),
        ({"spinup:warmHosts": -1}, "warmHosts must be within 0..2"),
        ({"spinup:cloudfrontPrefixListId": "sg-123"}, "cloudfrontPrefixListId must look like"),
        ({"spinup:amiId": "ubuntu"}, "amiId must look like"),
        ({"spinup:appName": "Spinup!"}, "appName must match"),
        ({"spinup:requireTickets": "yes"}, "requireTickets must be true or false"),
    ],
)
def test_bad_context_is_rejected_with_the_key_named(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from(context)
