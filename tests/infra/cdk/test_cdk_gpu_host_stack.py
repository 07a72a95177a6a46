"""The GPU host stack: one public subnet, a CloudFront-only security group, the instance."""

from __future__ import annotations

import re

from aws_cdk.assertions import Match

from gpu_host.bootstrap.parameters import env_parameter_name
from gpu_host.models.spec import BUILTIN_SPECS
from infra.config import DLAMI_SSM_PARAMETER
from tests.infra.cdk.cdk_synth_support import Synthesized


def test_vpc_has_one_public_subnet_and_no_nat(synthesized: Synthesized) -> None:
    synthesized.gpu.resource_count_is("AWS::EC2::VPC", 1)
    synthesized.gpu.resource_count_is("AWS::EC2::Subnet", 1)
    synthesized.gpu.resource_count_is("AWS::EC2::NatGateway", 0)
    synthesized.gpu.resource_count_is("AWS::EC2::InternetGateway", 1)


def test_only_cloudfront_reaches_the_origin_port(synthesized: Synthesized) -> None:
    """Given the host's security group, then its single inbound rule admits the origin port
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


def test_instance_requires_imdsv2_and_an_encrypted_root(synthesized: Synthesized) -> None:
    synthesized.gpu.resource_count_is("AWS::EC2::Instance", 1)
    synthesized.gpu.has_resource_properties(
        "AWS::EC2::Instance",
        {
            "InstanceType": synthesized.config.instance_type,
            "MetadataOptions": Match.object_like({"HttpTokens": "required"}),
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/sda1",
                    "Ebs": Match.object_like(
                        {
                            "Encrypted": True,
                            "VolumeType": "gp3",
                            "VolumeSize": synthesized.config.root_volume_gib,
                        }
                    ),
                }
            ],
            "InstanceInitiatedShutdownBehavior": "stop",
        },
    )


def test_image_is_the_deep_learning_ami_from_its_public_parameter(
    synthesized: Synthesized,
) -> None:
    parameters = synthesized.gpu.to_json()["Parameters"]
    assert any(p.get("Default") == DLAMI_SSM_PARAMETER for p in parameters.values())


def test_elastic_ip_is_attached_to_the_instance(synthesized: Synthesized) -> None:
    synthesized.gpu.resource_count_is("AWS::EC2::EIP", 1)
    synthesized.gpu.has_resource_properties(
        "AWS::EC2::EIPAssociation",
        {"AllocationId": Match.any_value(), "InstanceId": {"Ref": Match.any_value()}},
    )


def test_user_data_is_static_and_runs_the_first_boot_script(synthesized: Synthesized) -> None:
    """Given the user data, then it names only the SSM prefix and region: a new release
    changes an SSM parameter, never the instance."""
    (instance,) = synthesized.gpu.find_resources("AWS::EC2::Instance").values()
    user_data = str(instance["Properties"]["UserData"])
    assert f"SPINUP_SSM_PREFIX='{synthesized.config.ssm_prefix}'" in user_data
    assert "bootstrap.sh" in user_data
    assert "cdk-hnb659fds-assets" not in user_data
    assert re.search(r"[0-9a-f]{64}", user_data) is None  # no asset hash


def test_release_and_settings_are_published_for_the_host(synthesized: Synthesized) -> None:
    prefix = synthesized.config.ssm_prefix
    for name in ("release", "origin-port", "origin-verify-secret-arn", "origin-dns-name"):
        synthesized.gpu.has_resource_properties("AWS::SSM::Parameter", {"Name": f"{prefix}/{name}"})
    synthesized.gpu.resource_count_is("AWS::SecretsManager::Secret", 1)


def test_instance_role_reads_only_its_release_object(synthesized: Synthesized) -> None:
    policies = synthesized.gpu.find_resources("AWS::IAM::Policy")
    statements = [
        s
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "s3:GetObject" in str(s["Action"])
    ]
    (statement,) = statements
    assert statement["Action"] == "s3:GetObject"
    assert ".zip" in str(statement["Resource"])


def test_the_host_serves_every_model_of_the_spec(synthesized: Synthesized) -> None:
    """Given the default config, then the backend's SPINUP_MODELS names every built-in model,
    so the instance's Triton repository and the backend agree."""
    name = env_parameter_name(synthesized.config.ssm_prefix, "SPINUP_MODELS")
    synthesized.gpu.has_resource_properties(
        "AWS::SSM::Parameter", {"Name": name, "Value": ",".join(BUILTIN_SPECS)}
    )


def test_the_host_requires_socket_tickets_by_default(synthesized: Synthesized) -> None:
    assert synthesized.config.require_tickets
    name = env_parameter_name(synthesized.config.ssm_prefix, "SPINUP_REQUIRE_TICKETS")
    synthesized.gpu.has_resource_properties("AWS::SSM::Parameter", {"Name": name, "Value": "true"})
