"""DeployConfig from CDK context: defaults, overrides, and a clear error for each bad value."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, DeployConfig, config_from_context


def test_no_context_gives_the_defaults() -> None:
    assert config_from_context({}) == DeployConfig()


def test_defaults_launch_g4dn_with_fallbacks() -> None:
    config = DeployConfig()
    assert config.instance_type == "g4dn.xlarge"
    assert len(config.instance_types) > 1
    assert config.ssm_prefix == "/spinup/gpu-0"


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
        ({"spinup:availabilityZone": "eu-west-1b"}, "availability_zone", "eu-west-1b"),
        (
            {"spinup:cloudfrontPrefixListId": "pl-3b927c52"},
            "cloudfront_prefix_list_id",
            "pl-3b927c52",
        ),
        ({"spinup:amiId": "ami-0123456789abcdef0"}, "machine_image_id", "ami-0123456789abcdef0"),
        ({"spinup:appName": "demo", "spinup:hostId": "gpu-1"}, "ssm_prefix", "/demo/gpu-1"),
        ({"unrelated": "x"}, "app_name", "spinup"),
        ({"spinup:requireTickets": "false"}, "require_tickets", False),
        ({"spinup:requireTickets": False}, "require_tickets", False),
        ({"spinup:requireTickets": "TRUE"}, "require_tickets", True),
    ],
)
def test_context_overrides(context: dict[str, Any], attribute: str, expected: object) -> None:
    assert getattr(config_from_context(context), attribute) == expected


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"spinup:instanceType": "g5.xlarge"}, "unknown context keys"),
        ({"spinup:instanceTypes": ""}, "at least one EC2 instance type"),
        ({"spinup:instanceTypes": "g5.xlarge,G5"}, "at least one EC2 instance type"),
        ({"spinup:instanceTypes": "g5.xlarge,g5.xlarge"}, "twice"),
        ({"spinup:instanceTypes": 5}, "list or a comma-separated string"),
        ({"spinup:rootVolumeGiB": "big"}, "must be an integer"),
        ({"spinup:rootVolumeGiB": 20}, "within 100..2000"),
        ({"spinup:availabilityZone": "us-east-1"}, "availabilityZone must look like"),
        ({"spinup:cloudfrontPrefixListId": "sg-123"}, "cloudfrontPrefixListId must look like"),
        ({"spinup:amiId": "ubuntu"}, "amiId must look like"),
        ({"spinup:appName": "Spinup!"}, "appName must match"),
        ({"spinup:requireTickets": "yes"}, "requireTickets must be true or false"),
    ],
)
def test_bad_context_is_rejected_with_the_key_named(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_context(context)
