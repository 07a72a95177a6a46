"""The local front door: the pages' security headers and the code-flow provider over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from fastapi import FastAPI

from infra.csp import HEADER as CSP_HEADER
from infra.local.issuer import DEV_AUDIENCE, DEV_USER, DevIssuer
from infra.local.oidc import LocalOidcProvider, ProviderSettings, pkce_challenge
from infra.local.web import OIDC_PREFIX, add_local_routes, code_flow_config

ORIGIN = "http://testserver"
REDIRECT = f"{ORIGIN}/"
VERIFIER = "v" * 64
POLICY = "default-src 'self'; connect-src 'self' ws://127.0.0.1:9"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>")
    issuer = DevIssuer(issuer=ORIGIN)
    settings = ProviderSettings(
        client_id=DEV_AUDIENCE, redirect_uri=REDIRECT, token_ttl_s=60, refresh_ttl_s=3600
    )
    app = FastAPI()

    @app.get("/api/status")
    def status() -> dict[str, str]:
        return {"phase": "stopped"}

    add_local_routes(
        app,
        frontend_dir=tmp_path,
        config={"apiBase": "/api", "oidc": code_flow_config(ORIGIN, settings)},
        jwks=issuer.jwks(),
        csp=POLICY,
        oidc=LocalOidcProvider(issuer=issuer, settings=settings),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http


async def sign_in(client: httpx.AsyncClient) -> dict[str, str]:
    """The browser's code flow: authorize (redirect with a code), then the token request."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": DEV_AUDIENCE,
            "redirect_uri": REDIRECT,
            "scope": "openid",
            "state": "s1",
            "code_challenge": pkce_challenge(VERIFIER),
            "code_challenge_method": "S256",
        }
    )
    redirect = await client.get(f"{OIDC_PREFIX}/authorize?{query}", follow_redirects=False)
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert location.startswith(REDIRECT)
    code = parse_qs(urlsplit(location).query)["code"][0]
    response = await client.post(
        f"{OIDC_PREFIX}/token",
        content=urlencode(
            {
                "grant_type": "authorization_code",
                "client_id": DEV_AUDIENCE,
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
            }
        ),
        headers=FORM,
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, str] = response.json()
    return body


@pytest.mark.parametrize("path", ["/", "/index.html", "/config.json"])
async def test_pages_carry_the_content_security_policy(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers[CSP_HEADER] == POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_api_is_left_alone_as_in_aws(client: httpx.AsyncClient) -> None:
    assert CSP_HEADER not in (await client.get("/api/status")).headers


async def test_config_json_names_the_provider_endpoints(client: httpx.AsyncClient) -> None:
    oidc = (await client.get("/config.json")).json()["oidc"]
    assert oidc == {
        "authorizeUrl": f"{ORIGIN}{OIDC_PREFIX}/authorize",
        "tokenUrl": f"{ORIGIN}{OIDC_PREFIX}/token",
        "revokeUrl": f"{ORIGIN}{OIDC_PREFIX}/revoke",
        "clientId": DEV_AUDIENCE,
        "redirectUri": REDIRECT,
        "scopes": ["openid", "email", "profile"],
    }


async def test_sign_in_refresh_and_revoke_over_http(client: httpx.AsyncClient) -> None:
    """Given a sign-in through the HTTP endpoints, when the refresh token is rotated and the
    new one revoked, then the revoked one is refused with invalid_grant."""
    tokens = await sign_in(client)

    async def refresh(token: str) -> tuple[int, dict[str, str]]:
        response = await client.post(
            f"{OIDC_PREFIX}/token",
            content=urlencode(
                {"grant_type": "refresh_token", "client_id": DEV_AUDIENCE, "refresh_token": token}
            ),
            headers=FORM,
        )
        return response.status_code, response.json()

    status, rotated = await refresh(tokens["refresh_token"])
    assert status == 200
    revoke = await client.post(
        f"{OIDC_PREFIX}/revoke",
        content=urlencode({"client_id": DEV_AUDIENCE, "token": rotated["refresh_token"]}),
        headers=FORM,
    )
    assert revoke.status_code == 200
    assert await refresh(rotated["refresh_token"]) == (
        400,
        {
            "error": "invalid_grant",
            "error_description": "the refresh token is unknown, expired or revoked",
        },
    )


async def test_an_unregistered_redirect_uri_is_an_error_page_not_a_redirect(
    client: httpx.AsyncClient,
) -> None:
    query = urlencode({"client_id": DEV_AUDIENCE, "redirect_uri": "https://evil.example/"})
    response = await client.get(f"{OIDC_PREFIX}/authorize?{query}", follow_redirects=False)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Content-Type": "application/json"}, '{"grant_type": "refresh_token"}'),
        (FORM, "a=" + "x" * 20_000),
    ],
)
async def test_token_requests_must_be_small_forms(
    client: httpx.AsyncClient, headers: dict[str, str], content: str
) -> None:
    response = await client.post(f"{OIDC_PREFIX}/token", content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# ---- /config.json?user=: a development token per user -----------------------------------


@contextlib.asynccontextmanager
async def dev_front_door(
    frontend_dir: Path, *, models: Sequence[Mapping[str, str]] = ()
) -> AsyncIterator[tuple[httpx.AsyncClient, DevIssuer]]:
    """The local front door with a development token issuer (and `models` for config.json)."""
    (frontend_dir / "index.html").write_text("<!doctype html><title>x</title>")
    issuer = DevIssuer(issuer=ORIGIN)
    app = add_local_routes(
        FastAPI(),
        frontend_dir=frontend_dir,
        config={"apiBase": "/api", "devToken": issuer.issue()},
        jwks=issuer.jwks(),
        csp=POLICY,
        dev_token=issuer.issue,
        models=models,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http, issuer


@pytest.fixture
async def dev_client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, DevIssuer]]:
    async with dev_front_door(tmp_path) as client:
        yield client


def subject(issuer: DevIssuer, token: str) -> object:
    key = jwt.PyJWKSet.from_dict(issuer.jwks())[issuer.kid].key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=DEV_AUDIENCE, issuer=ORIGIN)
    return claims["sub"]


@pytest.mark.parametrize("user", ["alice", "bob.smith", "carol@example.com", "u_2-x", "A" * 64])
async def test_config_json_gives_a_token_for_the_named_user(
    dev_client: tuple[httpx.AsyncClient, DevIssuer], user: str
) -> None:
    http, issuer = dev_client
    response = await http.get("/config.json", params={"user": user})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["apiBase"] == "/api"
    assert subject(issuer, body["devToken"]) == user


async def test_plain_config_json_keeps_the_development_user(
    dev_client: tuple[httpx.AsyncClient, DevIssuer],
) -> None:
    http, issuer = dev_client
    assert subject(issuer, (await http.get("/config.json")).json()["devToken"]) == DEV_USER


@pytest.mark.parametrize(
    "user", ["", "-lead", "a b", "a/b", "ann<script>", "A" * 65, "é", "alice\n"]
)
async def test_a_bad_user_name_is_a_400_that_says_why(
    dev_client: tuple[httpx.AsyncClient, DevIssuer], user: str
) -> None:
    response = await dev_client[0].get("/config.json", params={"user": user})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_user"
    assert "user must be 1-64 letters, digits" in body["message"]
    assert "devToken" not in body


async def test_no_development_tokens_under_the_code_flow(client: httpx.AsyncClient) -> None:
    response = await client.get("/config.json", params={"user": "alice"})
    assert response.status_code == 400
    assert response.json()["error"] == "dev_tokens_off"


# ---- /config.json `models`: the user models the hosts serve, offered after the built-ins ----

NAILS = {"id": "nails", "label": "nails", "hint": "Your segment model"}


@pytest.mark.parametrize("params", [{}, {"user": "alice"}])
async def test_config_json_offers_the_served_user_models(
    tmp_path: Path, params: dict[str, str]
) -> None:
    async with dev_front_door(tmp_path, models=[NAILS]) as (http, _):
        body = (await http.get("/config.json", params=params)).json()
    assert body["models"] == [NAILS]
    assert body["apiBase"] == "/api"


async def test_config_json_has_no_models_key_without_user_models(
    dev_client: tuple[httpx.AsyncClient, DevIssuer],
) -> None:
    assert "models" not in (await dev_client[0].get("/config.json")).json()
