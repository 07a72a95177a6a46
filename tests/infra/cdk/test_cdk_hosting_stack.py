"""The hosting stack: private site bucket, CloudFront with three kinds of behavior, sign-in."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.infra.cdk.cdk_synth_support import Synthesized


def _distribution_config(s: Synthesized) -> dict[str, Any]:
    distributions = s.hosting.find_resources("AWS::CloudFront::Distribution")
    assert len(distributions) == 1
    (distribution,) = distributions.values()
    config: dict[str, Any] = distribution["Properties"]["DistributionConfig"]
    return config


def _origin(config: dict[str, Any], origin_id: object) -> dict[str, Any]:
    origins: list[dict[str, Any]] = [o for o in config["Origins"] if o["Id"] == origin_id]
    assert len(origins) == 1
    return origins[0]


def _behavior(config: dict[str, Any], pattern: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [
        b for b in config["CacheBehaviors"] if b["PathPattern"] == pattern
    ]
    assert len(matches) == 1, f"no single behavior for {pattern}"
    return matches[0]


def test_site_bucket_is_private_encrypted_and_ssl_only(synthesized: Synthesized) -> None:
    """Given the hosting stack, then every bucket blocks public access, is encrypted, and its
    policy denies plain HTTP."""
    buckets = synthesized.hosting.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 2  # the site and its access logs
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    synthesized.hosting.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_default_behavior_serves_the_bucket_through_origin_access_control(
    synthesized: Synthesized,
) -> None:
    config = _distribution_config(synthesized)
    default_origin = _origin(config, config["DefaultCacheBehavior"]["TargetOriginId"])
    assert "S3OriginConfig" in default_origin
    assert "OriginAccessControlId" in default_origin
    synthesized.hosting.resource_count_is("AWS::CloudFront::OriginAccessControl", 1)
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"


def test_api_behavior_goes_uncached_to_the_http_api_with_authorization(
    synthesized: Synthesized,
) -> None:
    config = _distribution_config(synthesized)
    api = _behavior(config, f"{synthesized.config.api_path_prefix}/*")
    origin = _origin(config, api["TargetOriginId"])
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    domain = str(origin["DomainName"])
    assert ".execute-api." in domain
    # Managed policies: CachingDisabled; AllViewerExceptHostHeader forwards Authorization.
    assert api["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert api["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    assert set(api["AllowedMethods"]) >= {"GET", "POST", "DELETE"}


@pytest.mark.parametrize("pattern", ["/ws/*", "/health", "/health/*"])
def test_host_behaviors_reach_the_instance_with_the_secret_header(
    synthesized: Synthesized, pattern: str
) -> None:
    """Given /ws/* and /health, then CloudFront forwards every viewer header (the WebSocket
    upgrade) uncached to the Elastic IP's DNS name, adding X-Origin-Verify from the secret."""
    config = _distribution_config(synthesized)
    behavior = _behavior(config, pattern)
    assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert behavior["OriginRequestPolicyId"] == "216adef6-5c7f-47e4-b989-5492eafa07d3"
    assert behavior["ViewerProtocolPolicy"] == "https-only"
    origin = _origin(config, behavior["TargetOriginId"])
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "http-only"
    assert origin["CustomOriginConfig"]["HTTPPort"] == synthesized.config.origin_port
    (header,) = origin["OriginCustomHeaders"]
    assert header["HeaderName"] == synthesized.config.origin_verify_header
    value = str(header["HeaderValue"])
    assert "{{resolve:secretsmanager:" in value
    assert "Fn::GetStackOutput" in value
    assert "Fn::GetStackOutput" in str(origin["DomainName"])


def test_distribution_has_exactly_the_expected_behaviors(synthesized: Synthesized) -> None:
    config = _distribution_config(synthesized)
    assert sorted(b["PathPattern"] for b in config["CacheBehaviors"]) == [
        "/api/*",
        "/health",
        "/health/*",
        "/ws/*",
    ]


def test_frontend_config_json_points_at_the_distribution(synthesized: Synthesized) -> None:
    """Given the deployed config.json, then it names /api, the distribution's socket URL and
    the hosted sign-in page (deploy-time values, substituted for markers), and carries no
    development token."""
    (asset,) = synthesized.outdir.glob("asset.*/config.json")
    # Deploy-time values stand as bare <<marker:…>> tokens; quote them to read the JSON.
    text = re.sub(r"<<marker:[^>]+>>", lambda m: json.dumps(m.group(0)), asset.read_text())
    config = json.loads(text)
    assert config["apiBase"] == "/api"
    assert "devToken" not in config
    (deployment,) = synthesized.hosting.find_resources("Custom::CDKBucketDeployment").values()
    markers = deployment["Properties"]["SourceMarkers"]
    values = {marker: value for source in markers for marker, value in source.items()}
    ws_url = json.dumps(values[config["wsUrl"]])
    assert "wss://" in ws_url
    assert "DomainName" in ws_url
    assert "/ws/inference" in ws_url
    login_url = json.dumps(values[config["loginUrl"]])
    assert "response_type=token" in login_url


def test_sign_in_has_a_closed_user_pool_and_an_implicit_flow_client(
    synthesized: Synthesized,
) -> None:
    synthesized.hosting.has_resource_properties(
        "AWS::Cognito::UserPool",
        {"AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True}},
    )
    synthesized.hosting.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {"AllowedOAuthFlows": ["implicit"], "GenerateSecret": False},
    )


def test_http_api_stage_is_throttled_and_access_logged(synthesized: Synthesized) -> None:
    synthesized.hosting.resource_count_is("AWS::ApiGatewayV2::Api", 1)
    synthesized.hosting.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AutoDeploy": True,
            "AccessLogSettings": Match.object_like({"DestinationArn": Match.any_value()}),
            "DefaultRouteSettings": Match.object_like(
                {
                    "ThrottlingRateLimit": Match.any_value(),
                    "ThrottlingBurstLimit": Match.any_value(),
                }
            ),
        },
    )
