"""The fleet as a whole: nothing in any template names an instance, the fleet's size and zones
follow the config, and the edge router follows the socket path scheme."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from gpu_host.bootstrap.parameters import env_parameter_name
from infra.config import DeployConfig, config_from_context
from infra.constructs.host_routes import ROUTER_SOURCE
from infra.stacks.gpu_host_stack import GpuHostStack
from lambdas.domain.routing import BACKEND_PATH, HOST_ID_PATTERN, WS_PREFIX
from tests.infra.cdk.cdk_synth_support import BUNDLING_STACKS, Synthesized, cdk_json_context

REMOVED_TYPES = ("AWS::EC2::Instance", "AWS::EC2::EIP", "AWS::EC2::EIPAssociation")

INSTANCE_REFERENCES = [
    re.compile(r"\bi-[0-9a-f]{8,17}\b"),  # an instance id
    re.compile(r"instance-id", re.IGNORECASE),  # an event pattern's or a filter's
    re.compile(r"InstanceId"),  # an attribute or a parameter
    re.compile(r":instance/"),  # an instance ARN
    re.compile(r"SPINUP_(INSTANCE|HOST)_ID"),  # a host's identity as a static setting
]


def test_no_template_has_an_instance_or_an_elastic_ip(synthesized: Synthesized) -> None:
    assert len(synthesized.template_files()) == 3
    for path in synthesized.template_files():
        template = json.loads(path.read_text(encoding="utf-8"))
        types = {resource["Type"] for resource in template["Resources"].values()}
        assert not types & set(REMOVED_TYPES), path.name


@pytest.mark.parametrize("pattern", INSTANCE_REFERENCES, ids=lambda p: p.pattern)
def test_no_template_names_an_instance(synthesized: Synthesized, pattern: re.Pattern[str]) -> None:
    """Hosts are found through the group, never wired in: no instance id, instance ARN or
    instance-id filter in any template (resources, environments, policies, event rules)."""
    for path in synthesized.template_files():
        found = pattern.findall(path.read_text(encoding="utf-8"))
        assert found == [], f"{path.name}: {found[:3]}"


def _fleet_stack(tmp_path: Path, config: DeployConfig) -> Template:
    app = App(outdir=str(tmp_path), context={**cdk_json_context(), BUNDLING_STACKS: []})
    return Template.from_stack(GpuHostStack(app, "Fleet", config=config))


@pytest.fixture
def fleet_stack(tmp_path: Path) -> Callable[[DeployConfig], Template]:
    return lambda config: _fleet_stack(tmp_path, config)


def test_named_zones_and_sizes_reach_the_group(
    fleet_stack: Callable[[DeployConfig], Template],
) -> None:
    zones = ("eu-west-1a", "eu-west-1b", "eu-west-1c")
    template = fleet_stack(DeployConfig(availability_zones=zones, max_hosts=4, warm_hosts=2))
    subnets = template.find_resources("AWS::EC2::Subnet")
    assert sorted(s["Properties"]["AvailabilityZone"] for s in subnets.values()) == list(zones)
    (group,) = template.find_resources("AWS::AutoScaling::AutoScalingGroup").values()
    assert group["Properties"]["MaxSize"] == "4"
    assert len(group["Properties"]["VPCZoneIdentifier"]) == 3
    (pool,) = template.find_resources("AWS::AutoScaling::WarmPool").values()
    assert (pool["Properties"]["MinSize"], pool["Properties"]["MaxGroupPreparedCapacity"]) == (2, 2)


def test_no_warm_hosts_means_no_warm_pool(
    fleet_stack: Callable[[DeployConfig], Template],
) -> None:
    """Every start is then a cold launch (initialize, then start, both in Pending:Wait), and
    scale-in terminates the host: no stopped disk is paid for."""
    template = fleet_stack(DeployConfig(warm_hosts=0))
    template.resource_count_is("AWS::AutoScaling::WarmPool", 0)
    template.resource_count_is("AWS::AutoScaling::AutoScalingGroup", 1)


def test_a_single_type_is_still_a_prioritized_policy(
    fleet_stack: Callable[[DeployConfig], Template],
) -> None:
    template = fleet_stack(DeployConfig(instance_types=("g6.xlarge",)))
    (group,) = template.find_resources("AWS::AutoScaling::AutoScalingGroup").values()
    policy = group["Properties"]["MixedInstancesPolicy"]
    assert policy["LaunchTemplate"]["Overrides"] == [{"InstanceType": "g6.xlarge"}]
    (template_data,) = template.find_resources("AWS::EC2::LaunchTemplate").values()
    assert template_data["Properties"]["LaunchTemplateData"]["InstanceType"] == "g6.xlarge"


def test_the_router_matches_the_socket_path_scheme() -> None:
    """infra/edge/ws_router.js routes `/ws/<host>/inference` to `/ws/inference` with the host
    id pattern of lambdas/domain/routing.py, the scheme's one source."""
    source = ROUTER_SOURCE.read_text(encoding="utf-8")
    assert f"const HOST_ID_PATTERN = '{HOST_ID_PATTERN}';" in source
    assert f"'inference': '{BACKEND_PATH}'" in source
    assert f"'^{WS_PREFIX}(' + HOST_ID_PATTERN + ')/(inference|" in source
    assert source.startswith("import cf from 'cloudfront';\n")
    assert "customHeaders" not in source.replace("passing customHeaders", "")


def test_the_router_fits_cloudfront_functions_size_limit() -> None:
    """CloudFront Functions take at most 10 KB of code."""
    assert len(ROUTER_SOURCE.read_bytes()) < 10 * 1024


def test_host_settings_are_published_to_the_hosts_environment(
    fleet_stack: Callable[[DeployConfig], Template],
) -> None:
    """Given `spinup:hostSettings`, then the fleet's stack publishes each as a host
    environment parameter (`<prefix>/env/SPINUP_<NAME>`), beside the stack's own."""
    config = config_from_context(
        {"spinup:hostSettings": {"default_models": "face", "max_loaded_models": 4}},
        user_models=None,
    )
    published = {
        r["Properties"]["Name"]: r["Properties"]["Value"]
        for r in fleet_stack(config).find_resources("AWS::SSM::Parameter").values()
    }
    prefix = config.ssm_prefix
    assert published[env_parameter_name(prefix, "SPINUP_DEFAULT_MODELS")] == "face"
    assert published[env_parameter_name(prefix, "SPINUP_MAX_LOADED_MODELS")] == "4"
    assert env_parameter_name(prefix, "SPINUP_MOTION_GATE") not in published
