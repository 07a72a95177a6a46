"""The GPU host stack: a public VPC over two zones, a CloudFront-only security group, the
launch template and the Auto Scaling group with its warm pool and launch hook."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from gpu_host.bootstrap.parameters import env_parameter_name
from gpu_host.models.spec import BUILTIN_SPECS
from infra.config import (
    FLEET_TAG_KEY,
    HOST_AMI_SSM_PARAMETER,
    group_name_parameter,
    launch_hook_parameter,
)
from infra.constructs.host_launch_template import HostLaunchTemplate
from infra.constructs.host_release import RELEASE_TAG
from infra.paths import GPU_HOST_DIR
from tests.infra.cdk.cdk_synth_support import Synthesized


def _only(s: Synthesized, resource_type: str) -> dict[str, Any]:
    resources = s.gpu.find_resources(resource_type)
    assert len(resources) == 1, f"{len(resources)} × {resource_type}"
    (resource,) = resources.values()
    return dict(resource)


def _group(s: Synthesized) -> dict[str, Any]:
    props: dict[str, Any] = _only(s, "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    return props


def _launch_data(s: Synthesized) -> dict[str, Any]:
    data: dict[str, Any] = _only(s, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    return data


def test_vpc_has_a_public_subnet_in_each_of_two_zones_and_no_nat(synthesized: Synthesized) -> None:
    synthesized.gpu.resource_count_is("AWS::EC2::VPC", 1)
    synthesized.gpu.has_resource_properties(
        "AWS::EC2::VPC", {"EnableDnsHostnames": True, "EnableDnsSupport": True}
    )
    subnets = synthesized.gpu.find_resources("AWS::EC2::Subnet")
    assert len(subnets) >= 2
    zones = {json.dumps(subnet["Properties"]["AvailabilityZone"]) for subnet in subnets.values()}
    assert len(zones) == len(subnets), "one subnet per zone"
    assert all(subnet["Properties"]["MapPublicIpOnLaunch"] for subnet in subnets.values())
    synthesized.gpu.resource_count_is("AWS::EC2::NatGateway", 0)
    synthesized.gpu.resource_count_is("AWS::EC2::InternetGateway", 1)


def test_only_cloudfront_reaches_the_origin_port(synthesized: Synthesized) -> None:
    """Given the hosts' security group, then its single inbound rule admits the origin port
    from CloudFront's origin-facing prefix list, looked up at deploy time."""
    port = synthesized.config.origin_port
    for group in synthesized.gpu.find_resources("AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in group["Properties"]
    # The prefix list id is a deploy-time value, so CDK writes the rule as its own resource.
    (rule,) = [
        r["Properties"]
        for r in synthesized.gpu.find_resources("AWS::EC2::SecurityGroupIngress").values()
    ]
    assert rule["IpProtocol"] == "tcp"
    assert (rule["FromPort"], rule["ToPort"]) == (port, port)
    assert "SourcePrefixListId" in rule
    assert "CidrIp" not in rule
    synthesized.gpu.has_resource_properties(
        "Custom::AWS",
        {
            "Create": Match.string_like_regexp(
                "describeManagedPrefixLists.*com.amazonaws.global.cloudfront.origin-facing"
            )
        },
    )


def test_launch_template_requires_imdsv2_and_an_encrypted_root(synthesized: Synthesized) -> None:
    data = _launch_data(synthesized)
    assert data["InstanceType"] == synthesized.config.instance_types[0]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {
                "DeleteOnTermination": True,
                "Encrypted": True,
                "VolumeType": "gp3",
                "VolumeSize": synthesized.config.root_volume_gib,
            },
        }
    ]
    assert data["InstanceInitiatedShutdownBehavior"] == "stop"
    assert "IamInstanceProfile" in data


def test_hosts_get_a_public_address_behind_the_cloudfront_only_group(
    synthesized: Synthesized,
) -> None:
    """CloudFront connects to each host's public DNS name: the template's one network
    interface gets a public IPv4 address and the hosts' security group."""
    (interface,) = _launch_data(synthesized)["NetworkInterfaces"]
    assert interface["AssociatePublicIpAddress"] is True
    assert interface["DeviceIndex"] == 0
    (group,) = interface["Groups"]
    (group_id,) = synthesized.gpu.find_resources("AWS::EC2::SecurityGroup")
    assert group == {"Fn::GetAtt": [group_id, "GroupId"]}


def test_image_is_the_ecs_gpu_ami_from_its_public_parameter(synthesized: Synthesized) -> None:
    parameters = synthesized.gpu.to_json()["Parameters"]
    (image_parameter,) = [
        name for name, p in parameters.items() if p.get("Default") == HOST_AMI_SSM_PARAMETER
    ]
    assert _launch_data(synthesized)["ImageId"] == {"Ref": image_parameter}


def test_user_data_is_static_and_runs_the_first_boot_script(synthesized: Synthesized) -> None:
    """Given the user data, then it names only the SSM prefix and region: the release is a
    tag of the template (below), and the host finds its location in SSM."""
    user_data = json.dumps(_launch_data(synthesized)["UserData"])
    assert f"SPINUP_SSM_PREFIX='{synthesized.config.ssm_prefix}'" in user_data
    assert "bootstrap.sh" in user_data
    assert "cdk-hnb659fds-assets" not in user_data
    assert re.search(r"[0-9a-f]{64}", user_data) is None  # no asset hash


def test_group_is_sized_by_the_control_plane_not_the_template(synthesized: Synthesized) -> None:
    """min 0, max `spinup:maxHosts`, and no DesiredCapacity: a redeploy never resets the
    capacity reconcile set; every new host is protected from scale-in."""
    group = _group(synthesized)
    assert group["AutoScalingGroupName"] == synthesized.config.group_name
    assert (group["MinSize"], group["MaxSize"]) == ("0", str(synthesized.config.max_hosts))
    assert "DesiredCapacity" not in group
    assert group["NewInstancesProtectedFromScaleIn"] is True


def test_group_spans_every_public_subnet(synthesized: Synthesized) -> None:
    subnets = sorted(synthesized.gpu.find_resources("AWS::EC2::Subnet"))
    zones = _group(synthesized)["VPCZoneIdentifier"]
    assert len(zones) >= 2
    assert sorted(z["Ref"] for z in zones) == subnets


def test_group_falls_back_through_the_configured_types_on_demand_only(
    synthesized: Synthesized,
) -> None:
    """A mixed instances policy with the configured types in order (`prioritized`), On-Demand
    only (warm pools take no Spot), on the launch template's latest version."""
    policy = _group(synthesized)["MixedInstancesPolicy"]
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == list(
        synthesized.config.instance_types
    )
    assert policy["InstancesDistribution"] == {
        "OnDemandAllocationStrategy": "prioritized",
        "OnDemandBaseCapacity": 0,
        "OnDemandPercentageAboveBaseCapacity": 100,
    }
    (template_id,) = synthesized.gpu.find_resources("AWS::EC2::LaunchTemplate")
    assert policy["LaunchTemplate"]["LaunchTemplateSpecification"] == {
        "LaunchTemplateId": {"Ref": template_id},
        "Version": {"Fn::GetAtt": [template_id, "LatestVersionNumber"]},
    }
    assert "LaunchTemplate" not in _group(synthesized)


def test_group_carries_the_fleet_tag_onto_its_hosts(synthesized: Synthesized) -> None:
    tags = _group(synthesized)["Tags"]
    assert {
        "Key": FLEET_TAG_KEY,
        "Value": synthesized.config.app_name,
        "PropagateAtLaunch": True,
    } in tags


def test_launch_hook_is_part_of_the_group_and_abandons_a_silent_host(
    synthesized: Synthesized,
) -> None:
    """The hook is declared on the group itself, so it exists before the first instance
    launches into the warm pool."""
    assert _group(synthesized)["LifecycleHookSpecificationList"] == [
        {
            "LifecycleHookName": synthesized.config.launch_hook_name,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "HeartbeatTimeout": synthesized.config.launch_hook_heartbeat_s,
            "DefaultResult": "ABANDON",
        }
    ]
    synthesized.gpu.resource_count_is("AWS::AutoScaling::LifecycleHook", 0)


def test_the_group_launches_only_once_the_hosts_settings_and_rights_exist(
    synthesized: Synthesized,
) -> None:
    """The warm pool's first instance initializes at once: the release, every SSM setting of
    this stack and the hosts' policy are created before the group."""
    (group,) = synthesized.gpu.find_resources("AWS::AutoScaling::AutoScalingGroup").values()
    depends_on = set(group["DependsOn"])
    parameters = set(synthesized.gpu.find_resources("AWS::SSM::Parameter"))
    assert len(parameters) >= 8
    assert parameters <= depends_on
    (host_policy,) = [
        lid
        for lid, policy in synthesized.gpu.find_resources("AWS::IAM::Policy").items()
        if "autoscaling:CompleteLifecycleAction" in json.dumps(policy)
    ]
    assert host_policy in depends_on


def test_warm_pool_holds_exactly_the_prepared_hosts_stopped(synthesized: Synthesized) -> None:
    (group_id,) = synthesized.gpu.find_resources("AWS::AutoScaling::AutoScalingGroup")
    pool = _only(synthesized, "AWS::AutoScaling::WarmPool")["Properties"]
    assert pool == {
        "AutoScalingGroupName": {"Ref": group_id},
        "PoolState": "Stopped",
        "InstanceReusePolicy": {"ReuseOnScaleIn": True},
        "MinSize": synthesized.config.warm_hosts,
        "MaxGroupPreparedCapacity": synthesized.config.warm_hosts,
    }


def test_az_rebalancing_is_suspended_once_the_group_exists(synthesized: Synthesized) -> None:
    resources = synthesized.gpu.find_resources(
        "Custom::AWS", {"Properties": {"Create": Match.string_like_regexp("suspendProcesses")}}
    )
    (resource,) = resources.values()
    (group_id,) = synthesized.gpu.find_resources("AWS::AutoScaling::AutoScalingGroup")
    for phase in ("Create", "Update"):
        call = json.loads(resource["Properties"][phase])
        assert call["service"] == "AutoScaling"
        assert call["parameters"] == {
            "AutoScalingGroupName": synthesized.config.group_name,
            "ScalingProcesses": ["AZRebalance"],
        }
    assert group_id in resource["DependsOn"]


def _host_statements(s: Synthesized) -> list[dict[str, Any]]:
    (role_id,) = [
        lid
        for lid, role in s.gpu.find_resources("AWS::IAM::Role").items()
        if "ec2.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    ]
    return [
        statement
        for policy in s.gpu.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_hosts_complete_lifecycle_actions_of_their_own_group_only(synthesized: Synthesized) -> None:
    """The launch hook's actions, and the watchdog's way out (leave the group, the desired
    capacity lowered), on the hosts' own group only."""
    (statement,) = [
        st for st in _host_statements(synthesized) if "autoscaling" in json.dumps(st["Action"])
    ]
    assert sorted(statement["Action"]) == [
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    assert statement["Condition"] == {
        "StringEquals": {f"autoscaling:ResourceTag/{FLEET_TAG_KEY}": synthesized.config.app_name}
    }
    resource = json.dumps(statement["Resource"])
    assert f":autoScalingGroup:*:autoScalingGroupName/{synthesized.config.group_name}" in resource


def test_host_role_reads_only_its_release_object(synthesized: Synthesized) -> None:
    (statement,) = [
        st for st in _host_statements(synthesized) if "s3:GetObject" in str(st["Action"])
    ]
    assert statement["Action"] == "s3:GetObject"
    assert ".zip" in str(statement["Resource"])


@pytest.mark.parametrize(
    ("parameter", "attribute"),
    [(group_name_parameter, "group_name"), (launch_hook_parameter, "launch_hook_name")],
)
def test_hosts_find_their_group_and_hook_in_their_settings(
    synthesized: Synthesized, parameter: Callable[[str], str], attribute: str
) -> None:
    config = synthesized.config
    synthesized.gpu.has_resource_properties(
        "AWS::SSM::Parameter",
        {"Name": parameter(config.ssm_prefix), "Value": getattr(config, attribute)},
    )


def test_release_and_settings_are_published_for_the_hosts(synthesized: Synthesized) -> None:
    prefix = synthesized.config.ssm_prefix
    for name in ("release", "origin-port", "origin-verify-secret-arn"):
        synthesized.gpu.has_resource_properties("AWS::SSM::Parameter", {"Name": f"{prefix}/{name}"})
    synthesized.gpu.resource_count_is("AWS::SecretsManager::Secret", 1)


def test_the_hosts_serve_every_model_of_the_spec(synthesized: Synthesized) -> None:
    """Given the default config, then the backend's SPINUP_MODELS names every built-in model,
    so each host's Triton repository and the backend agree."""
    name = env_parameter_name(synthesized.config.ssm_prefix, "SPINUP_MODELS")
    synthesized.gpu.has_resource_properties(
        "AWS::SSM::Parameter", {"Name": name, "Value": ",".join(BUILTIN_SPECS)}
    )


def test_the_hosts_require_socket_tickets_by_default(synthesized: Synthesized) -> None:
    assert synthesized.config.require_tickets
    name = env_parameter_name(synthesized.config.ssm_prefix, "SPINUP_REQUIRE_TICKETS")
    synthesized.gpu.has_resource_properties("AWS::SSM::Parameter", {"Name": name, "Value": "true"})


def test_no_host_id_is_a_static_setting(synthesized: Synthesized) -> None:
    """A host's id is its instance id, which it reads from instance metadata."""
    names = [
        p["Properties"]["Name"]
        for p in synthesized.gpu.find_resources("AWS::SSM::Parameter").values()
    ]
    assert env_parameter_name(synthesized.config.ssm_prefix, "SPINUP_HOST_ID") not in names


def _release_hash(s: Synthesized) -> str:
    name = f"{s.config.ssm_prefix}/release"
    (parameter,) = s.gpu.find_resources("AWS::SSM::Parameter", {"Properties": {"Name": name}})
    value = json.dumps(s.gpu.to_json()["Resources"][parameter]["Properties"]["Value"])
    (found,) = set(re.findall(r"[0-9a-f]{64}", value))
    return str(found)


@pytest.mark.parametrize("resource_type", ["instance", "volume"])
def test_the_template_names_the_release_its_hosts_install(
    synthesized: Synthesized, resource_type: str
) -> None:
    """Given the release parameter's asset, then its hash is a tag in the launch template's
    data: a new release is a new template version (hosts install at initialize only), and
    each host says which release it has."""
    (spec,) = [
        t
        for t in _launch_data(synthesized)["TagSpecifications"]
        if t["ResourceType"] == resource_type
    ]
    assert {"Key": RELEASE_TAG, "Value": _release_hash(synthesized)} in spec["Tags"]


def _template_data(stack: Stack, release_id: str) -> dict[str, Any]:
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=0, max_azs=1)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    HostLaunchTemplate(
        stack,
        "Hosts",
        name="spinup-gpu-host",
        role=role,
        security_group=ec2.SecurityGroup(stack, "Sg", vpc=vpc),
        instance_type="g5.xlarge",
        machine_image=ec2.MachineImage.generic_linux({"us-east-1": "ami-0123456789abcdef0"}),
        root_volume_gib=40,
        first_boot_script=GPU_HOST_DIR / "bootstrap" / "first-boot.sh",
        ssm_prefix="/spinup/fleet",
        release_id=release_id,
    )
    (template,) = Template.from_stack(stack).find_resources("AWS::EC2::LaunchTemplate").values()
    data: dict[str, Any] = template["Properties"]["LaunchTemplateData"]
    return data


def test_a_new_release_is_a_new_template_version(small_stack: Callable[[], Stack]) -> None:
    """Given two releases, then the templates' data differ (CloudFormation makes a new version
    of a template whose data changed, and the group launches from its latest), in the release
    tag only."""
    old, new = _template_data(small_stack(), "a" * 64), _template_data(small_stack(), "b" * 64)
    assert old != new
    assert json.dumps(old).replace("a" * 64, "b" * 64) == json.dumps(new)
