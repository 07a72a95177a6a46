"""Who may call the control API: verified bearer tokens (jwks mode) or API Gateway's
authorizer claims (apigw mode, through Mangum as in Lambda)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any, cast

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mangum import Mangum
from mangum.types import LambdaContext

from lambdas.aws.clients import Clients
from lambdas.control import lambda_handler
from lambdas.control.app import create_app
from lambdas.settings import Settings
from tests.integration.control.harness import AUDIENCE, ISSUER, Aws, Clock, Issuer

CONTEXT = cast(LambdaContext, SimpleNamespace(function_name="spinup-control-api"))
ROUTES = [
    ("POST", "/api/sessions"),
    ("GET", "/api/status"),
    ("POST", f"/api/sessions/{'a' * 32}/keepalive"),
    ("POST", f"/api/sessions/{'a' * 32}/ticket"),
    ("DELETE", f"/api/sessions/{'a' * 32}"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_no_token_is_401(method: str, path: str, api: httpx.AsyncClient) -> None:
    answer = await api.request(method, path)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <JWT>" in answer.json()["detail"]


def _stranger_token() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "unknown"})


@pytest.mark.parametrize(
    ("make_token", "words"),
    [
        (lambda issuer: "not-a-jwt", "not a JWT signed by a key"),
        (lambda issuer: _stranger_token(), "not a JWT signed by a key"),
        (lambda issuer: issuer.token(exp=int(time.time()) - 3600), "expired"),
        (lambda issuer: issuer.token(aud="someone-else"), "rejected"),
        (lambda issuer: issuer.token(iss="https://evil.test"), "rejected"),
        (lambda issuer: issuer.token(sub=""), "'sub'"),
        (lambda issuer: issuer.token(sub=None), "rejected"),
    ],
    ids=["garbage", "unknown_key", "expired", "audience", "issuer", "empty_sub", "no_sub"],
)
async def test_a_bad_token_is_401(
    make_token: Any, words: str, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    token = make_token(issuer)
    answer = await api.get("/api/status", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert words in answer.json()["detail"]


async def test_another_scheme_is_401(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/status", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert answer.status_code == 401


async def test_an_unreachable_jwks_is_503_not_401(
    settings: Settings, clients: Clients, clock: Clock, issuer: Issuer
) -> None:
    broken = settings.model_copy(update={"jwks_url": "http://127.0.0.1:9/jwks.json"})
    app = create_app(broken, clients=clients, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://spinup.test") as api:
        answer = await api.get("/api/status", headers=issuer.headers())
    assert answer.status_code == 503
    assert "JWKS" in answer.json()["detail"]


def http_api_event(method: str, path: str, claims: dict[str, Any] | None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as its JWT authorizer passes it on."""
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api",
        "domainName": "api.spinup.test",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9",
            "userAgent": "pytest",
        },
        "requestId": "req",
        "routeKey": "$default",
        "stage": "$default",
        "time": "15/Jan/2027:08:00:00 +0000",
        "timeEpoch": 1_800_000_000_000,
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.spinup.test", "content-type": "application/json"},
        "requestContext": context,
        "isBase64Encoded": False,
    }


@pytest.fixture
def apigw_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_mode": "apigw"})


def test_behind_api_gateway_the_authorizers_claims_name_the_user(
    apigw_settings: Settings, clients: Clients, clock: Clock, aws: Aws
) -> None:
    handler = Mangum(create_app(apigw_settings, clients=clients, clock=clock), lifespan="off")

    answer = handler(http_api_event("POST", "/api/sessions", {"sub": "carol"}), CONTEXT)

    assert answer["statusCode"] == 202
    assert set(aws.fleet().sessions) == {"carol"}
    status = handler(http_api_event("GET", "/api/status", {"sub": "carol"}), CONTEXT)
    assert len(json.loads(status["body"])["sessions"]) == 1


def test_behind_api_gateway_no_claims_is_401(
    apigw_settings: Settings, clients: Clients, clock: Clock
) -> None:
    handler = Mangum(create_app(apigw_settings, clients=clients, clock=clock), lifespan="off")
    answer = handler(http_api_event("GET", "/api/status", None), CONTEXT)
    assert answer["statusCode"] == 401
    assert "API Gateway" in json.loads(answer["body"])["detail"]


def test_the_lambda_handler_reads_its_settings_from_the_environment(
    lambda_environment: dict[str, str], aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the SPINUP_ environment of the Lambda, when API Gateway invokes the handler,
    then it answers with the app built from those settings: the fleet found through the
    group named there."""
    monkeypatch.setenv("SPINUP_INSTANCE_TYPES", "g5.xlarge,g6.xlarge")

    answer = lambda_handler.handler(http_api_event("GET", "/api/status", {"sub": "dan"}), CONTEXT)
    started = lambda_handler.handler(
        http_api_event("POST", "/api/sessions", {"sub": "dan"}), CONTEXT
    )

    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["phase"] == "stopped"
    assert started["statusCode"] == 202, started["body"]
    assert aws.desired_capacity() == 1
    assert len(aws.in_service()) == 1
