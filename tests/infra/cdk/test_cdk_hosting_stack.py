"""The hosting stack: private site bucket, CloudFront with three kinds of behavior (the socket's
routed per host by a CloudFront Function and a KeyValueStore), sign-in."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match

from infra.config import config_from_context
from infra.constructs.edge_distribution import UNROUTED_ORIGIN
from infra.constructs.host_routes import ROUTER_SOURCE
from infra.stacks.hosting_stack import frontend_config
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


def test_socket_behavior_reaches_the_hosts_with_the_secret_header(
    synthesized: Synthesized,
) -> None:
    """Given /ws/*, then CloudFront forwards every viewer header (the WebSocket upgrade)
    uncached, over HTTP to the origin port, adding X-Origin-Verify from the secret; the
    origin's own name is the placeholder the router function always replaces."""
    config = _distribution_config(synthesized)
    behavior = _behavior(config, "/ws/*")
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
    assert origin["DomainName"] == UNROUTED_ORIGIN
    assert UNROUTED_ORIGIN.endswith(".invalid")  # RFC 6761: never resolves


def test_socket_behavior_runs_the_router_with_the_route_store(synthesized: Synthesized) -> None:
    """The /ws/* behavior runs the router on every viewer request; the router is the
    repository's infra/edge/ws_router.js verbatim, on runtime 2.0, reading the store."""
    (association,) = _behavior(_distribution_config(synthesized), "/ws/*")["FunctionAssociations"]
    (function_id,) = synthesized.hosting.find_resources("AWS::CloudFront::Function")
    assert association == {
        "EventType": "viewer-request",
        "FunctionARN": {"Fn::GetAtt": [function_id, "FunctionARN"]},
    }
    (store_id,) = synthesized.hosting.find_resources("AWS::CloudFront::KeyValueStore")
    function = synthesized.hosting.find_resources("AWS::CloudFront::Function")[function_id]
    props = function["Properties"]
    assert props["FunctionCode"] == ROUTER_SOURCE.read_text(encoding="utf-8")
    assert props["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert props["FunctionConfig"]["KeyValueStoreAssociations"] == [
        {"KeyValueStoreARN": {"Fn::GetAtt": [store_id, "Arn"]}}
    ]
    assert props["AutoPublish"] is True


def test_only_the_socket_behavior_runs_a_function(synthesized: Synthesized) -> None:
    config = _distribution_config(synthesized)
    assert "FunctionAssociations" not in config["DefaultCacheBehavior"]
    assert "FunctionAssociations" not in _behavior(config, "/api/*")


def test_distribution_has_exactly_the_expected_behaviors(synthesized: Synthesized) -> None:
    config = _distribution_config(synthesized)
    assert sorted(b["PathPattern"] for b in config["CacheBehaviors"]) == ["/api/*", "/ws/*"]


def _config_json(s: Synthesized) -> tuple[dict[str, Any], dict[str, Any]]:
    """The deployed config.json and the deploy-time values of its `<<marker:…>>` tokens."""
    (asset,) = s.outdir.glob("asset.*/config.json")
    # Deploy-time values stand as bare <<marker:…>> tokens; quote them to read the JSON.
    text = re.sub(r"<<marker:[^>]+>>", lambda m: json.dumps(m.group(0)), asset.read_text())
    (deployment,) = s.hosting.find_resources("Custom::CDKBucketDeployment").values()
    markers = deployment["Properties"]["SourceMarkers"]
    values = {marker: value for source in markers for marker, value in source.items()}
    return json.loads(text), values


def _resolved(text: str, values: dict[str, Any]) -> str:
    """`text` with each marker replaced by its CloudFormation value, as JSON text."""
    return re.sub(r"<<marker:[^>]+>>", lambda m: json.dumps(values[m.group(0)]), text)


def test_frontend_config_json_names_the_api_and_no_socket(synthesized: Synthesized) -> None:
    """Given the deployed config.json, then it names /api, no socket URL (each session's names
    its host; the status gives it) and no development token."""
    config, _ = _config_json(synthesized)
    assert config["apiBase"] == "/api"
    assert "wsUrl" not in config
    assert "devToken" not in config
    assert "loginUrl" not in config
    assert "models" not in config, "the default config declares no user model"


def test_frontend_config_json_names_cognito_for_the_code_flow(synthesized: Synthesized) -> None:
    """Given config.json's `oidc`, then the endpoints are the hosted UI's OAuth endpoints on
    the pool's domain, the client is the web client and the redirect is CloudFront's URL."""
    config, values = _config_json(synthesized)
    oidc = config["oidc"]
    (domain_id,) = synthesized.hosting.find_resources("AWS::Cognito::UserPoolDomain")
    (client_id,) = synthesized.hosting.find_resources("AWS::Cognito::UserPoolClient")
    assert set(oidc) == {
        "authorizeUrl",
        "tokenUrl",
        "revokeUrl",
        "endSessionUrl",
        "clientId",
        "redirectUri",
        "scopes",
    }
    for key, path in [
        ("authorizeUrl", "/oauth2/authorize"),
        ("tokenUrl", "/oauth2/token"),
        ("revokeUrl", "/oauth2/revoke"),
        ("endSessionUrl", "/logout?client_id="),
    ]:
        url = _resolved(oidc[key], values)
        assert json.dumps({"Ref": domain_id}) in url, key
        assert ".amazoncognito.com" in url, key
        assert path in url, key
    assert json.dumps({"Ref": client_id}) in _resolved(oidc["clientId"], values)
    redirect = _resolved(oidc["redirectUri"], values)
    assert "https://" in redirect
    assert "DomainName" in redirect
    assert oidc["scopes"] == ["openid", "email", "profile"]


def test_sign_in_has_a_closed_user_pool_on_the_essentials_plan(synthesized: Synthesized) -> None:
    synthesized.hosting.has_resource_properties(
        "AWS::Cognito::UserPool",
        {"AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True}, "UserPoolTier": "ESSENTIALS"},
    )


def _web_client(s: Synthesized) -> dict[str, Any]:
    clients = s.hosting.find_resources("AWS::Cognito::UserPoolClient")
    assert len(clients) == 1
    (client,) = clients.values()
    props: dict[str, Any] = client["Properties"]
    return props


def test_the_web_client_is_a_public_code_flow_client(synthesized: Synthesized) -> None:
    """Given the browser's app client, then it has no secret and only the authorization code
    grant (no implicit: tokens never in a URL), and it redirects only to CloudFront's URL."""
    client = _web_client(synthesized)
    assert client["GenerateSecret"] is False
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert sorted(client["AllowedOAuthScopes"]) == ["email", "openid", "profile"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    for key in ("CallbackURLs", "LogoutURLs"):
        (url,) = client[key]
        assert "DomainName" in json.dumps(url), key


def test_the_web_client_rotates_short_lived_refresh_tokens_and_can_revoke_them(
    synthesized: Synthesized,
) -> None:
    """Given the app client, then refresh tokens rotate on every use with no grace, last 12 h,
    ID and access tokens 1 h, revocation is on, and the refresh-token auth flow that rotation
    replaces is off."""
    client = _web_client(synthesized)
    lifetimes = synthesized.config.sign_in
    assert client["RefreshTokenRotation"] == {
        "Feature": "ENABLED",
        "RetryGracePeriodSeconds": lifetimes.rotation_grace_s,
    }
    assert lifetimes.rotation_grace_s == 0
    units = client["TokenValidityUnits"]
    minutes = {"minutes": 1, "hours": 60, "days": 1440}
    assert client["IdTokenValidity"] * minutes[units["IdToken"]] == 60
    assert client["AccessTokenValidity"] * minutes[units["AccessToken"]] == 60
    assert client["RefreshTokenValidity"] * minutes[units["RefreshToken"]] == 12 * 60
    assert client["EnableTokenRevocation"] is True
    assert "ALLOW_REFRESH_TOKEN_AUTH" not in client["ExplicitAuthFlows"]


def test_the_pages_carry_a_strict_content_security_policy(synthesized: Synthesized) -> None:
    """Given the default (pages) behavior, then its response headers policy sets the CSP of
    infra/csp.py with Cognito's domain in connect-src, and the usual security headers."""
    config = _distribution_config(synthesized)
    policy_ref = config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"]
    assert "Ref" in policy_ref, "the managed SecurityHeaders policy has no CSP"
    policies = synthesized.hosting.find_resources("AWS::CloudFront::ResponseHeadersPolicy")
    headers = policies[policy_ref["Ref"]]["Properties"]["ResponseHeadersPolicyConfig"][
        "SecurityHeadersConfig"
    ]
    csp = json.dumps(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert headers["ContentSecurityPolicy"]["Override"] is True
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'self'",
        "object-src 'none'",
        "connect-src 'self' https://",
    ):
        assert directive in csp, directive
    assert "amazoncognito.com" in csp
    assert "unsafe" not in csp
    assert headers["FrameOptions"]["FrameOption"] == "SAMEORIGIN"
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000
    assert headers["ContentTypeOptions"]["Override"] is True


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


def _declared(folder: Path, *models: tuple[str, str]) -> Path:
    entries = []
    for name, layout in models:
        (folder / f"{name}.onnx").write_bytes(b"onnx")
        entries.append({"name": name, "file": f"{name}.onnx", "layout": layout, "input_size": 64})
    path = folder / "user_models.json"
    path.write_text(json.dumps({"models": entries}))
    return path


def test_config_json_offers_the_served_user_models(tmp_path: Path) -> None:
    """Given two declared user models of which the fleet serves one, config.json's `models`
    offers that one to the UI, with a hint saying its task."""
    declared = _declared(tmp_path, ("nails", "yolov8-segment"), ("people", "yolov8-pose"))
    config = config_from_context({}, user_models=declared)
    assert frontend_config(config, {"clientId": "c"})["models"] == [
        {"id": "nails", "label": "nails", "hint": "Your segment model"},
        {"id": "people", "label": "people", "hint": "Your pose model"},
    ]
    fewer = replace(config, served_models=("detect", "people"))
    runtime = frontend_config(fewer, {"clientId": "c"})
    assert runtime["models"] == [{"id": "people", "label": "people", "hint": "Your pose model"}]
    assert (runtime["apiBase"], runtime["oidc"]) == ("/api", {"clientId": "c"})
    assert "models" not in frontend_config(replace(config, served_models=("detect",)), {})
