"""The local OIDC provider: the code flow with PKCE, refresh rotation with reuse detection,
revocation, and tokens the rest of the system verifies."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from infra.local.issuer import DEV_AUDIENCE, DEV_USER, DevIssuer
from infra.local.oidc import (
    CODE_TTL_S,
    LocalOidcProvider,
    OidcError,
    ProviderSettings,
    RedirectError,
    pkce_challenge,
)

ISSUER = "http://127.0.0.1:8000"
REDIRECT = "http://127.0.0.1:8000/"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
TOKEN_TTL_S = 5


class Clock:
    """Starts at the real time, so that issued tokens verify; moves only when told."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def issuer() -> DevIssuer:
    return DevIssuer(issuer=ISSUER)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(issuer: DevIssuer, clock: Clock) -> LocalOidcProvider:
    settings = ProviderSettings(
        client_id=DEV_AUDIENCE,
        redirect_uri=REDIRECT,
        token_ttl_s=TOKEN_TTL_S,
        refresh_ttl_s=3600,
    )
    return LocalOidcProvider(issuer=issuer, settings=settings, clock=clock)


def authorize_params(**override: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": DEV_AUDIENCE,
        "redirect_uri": REDIRECT,
        "scope": "openid email",
        "state": "st-123",
        "code_challenge": pkce_challenge(VERIFIER),
        "code_challenge_method": "S256",
    }
    params.update(override)
    return params


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def code_for(provider: LocalOidcProvider, **override: str) -> str:
    return query_of(provider.authorize(authorize_params(**override)))["code"]


def exchange(provider: LocalOidcProvider, code: str, verifier: str = VERIFIER) -> dict[str, Any]:
    return provider.token(
        {
            "grant_type": "authorization_code",
            "client_id": DEV_AUDIENCE,
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
    )


def refresh(provider: LocalOidcProvider, token: str) -> dict[str, Any]:
    return provider.token(
        {"grant_type": "refresh_token", "client_id": DEV_AUDIENCE, "refresh_token": token}
    )


def claims(issuer: DevIssuer, token: str, *, audience: str | None) -> dict[str, Any]:
    """The verified claims; `audience=None` for a token that must have none."""
    key = jwt.PyJWKSet.from_dict(issuer.jwks())[issuer.kid].key
    decoded: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        issuer=ISSUER,
        audience=audience,
        leeway=60,
        options={"verify_aud": audience is not None},
    )
    return decoded


def test_pkce_challenge_is_rfc_7636_appendix_b() -> None:
    assert pkce_challenge(VERIFIER) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_authorize_redirects_back_with_a_code_and_the_state(provider: LocalOidcProvider) -> None:
    location = provider.authorize(authorize_params())
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == "st-123"
    assert len(query["code"]) >= 32


def test_the_code_flow_returns_tokens_the_system_verifies(
    provider: LocalOidcProvider, issuer: DevIssuer, clock: Clock
) -> None:
    """Given a code from /authorize, when it is exchanged with the right verifier, then the
    ID token verifies with the client as audience and lives TOKEN_TTL_S; the access token
    has no audience (like Cognito's) and the response carries a refresh token."""
    body = exchange(provider, code_for(provider, login_hint="alice"))
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == TOKEN_TTL_S
    id_claims = claims(issuer, body["id_token"], audience=DEV_AUDIENCE)
    assert id_claims["sub"] == "alice"
    assert id_claims["exp"] == int(clock.now) + TOKEN_TTL_S
    access = claims(issuer, body["access_token"], audience=None)
    assert "aud" not in access
    assert access["client_id"] == DEV_AUDIENCE
    assert body["refresh_token"]


def test_without_a_login_hint_the_user_is_the_dev_user(
    provider: LocalOidcProvider, issuer: DevIssuer
) -> None:
    body = exchange(provider, code_for(provider))
    assert claims(issuer, body["id_token"], audience=DEV_AUDIENCE)["sub"] == DEV_USER


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"redirect_uri": "https://evil.example/"}, "invalid_request"),
    ],
)
def test_an_unknown_client_or_redirect_uri_is_refused_without_a_redirect(
    provider: LocalOidcProvider, change: dict[str, str], error: str
) -> None:
    with pytest.raises(OidcError) as caught:
        provider.authorize(authorize_params(**change))
    assert not isinstance(caught.value, RedirectError)
    assert caught.value.error == error


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"scope": "email"}, "invalid_scope"),
    ],
)
def test_a_bad_authorize_request_goes_back_to_the_client_as_an_error(
    provider: LocalOidcProvider, change: dict[str, str], error: str
) -> None:
    """The implicit grant and PKCE-less or plain-PKCE requests are refused."""
    with pytest.raises(RedirectError) as caught:
        provider.authorize(authorize_params(**change))
    query = query_of(caught.value.location)
    assert (query["error"], query["state"]) == (error, "st-123")


def test_a_wrong_verifier_is_refused_and_spends_the_code(provider: LocalOidcProvider) -> None:
    code = code_for(provider)
    with pytest.raises(OidcError, match="code_verifier does not match") as caught:
        exchange(provider, code, verifier="x" * 43)
    assert caught.value.error == "invalid_grant"
    with pytest.raises(OidcError, match="unknown, used or expired"):
        exchange(provider, code)


def test_a_code_is_single_use(provider: LocalOidcProvider) -> None:
    code = code_for(provider)
    exchange(provider, code)
    with pytest.raises(OidcError) as caught:
        exchange(provider, code)
    assert caught.value.error == "invalid_grant"


def test_a_code_expires(provider: LocalOidcProvider, clock: Clock) -> None:
    code = code_for(provider)
    clock.now += CODE_TTL_S
    with pytest.raises(OidcError, match="expired"):
        exchange(provider, code)


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "client_id": "other"}, "invalid_client"),
        ({"grant_type": "authorization_code", "code_verifier": "short"}, "invalid_request"),
    ],
)
def test_bad_token_requests_say_why(
    provider: LocalOidcProvider, form: dict[str, str], error: str
) -> None:
    with pytest.raises(OidcError) as caught:
        provider.token({"client_id": DEV_AUDIENCE, **form})
    assert caught.value.error == error


def test_refresh_rotates_and_reuse_revokes_the_whole_sign_in(
    provider: LocalOidcProvider, issuer: DevIssuer, clock: Clock
) -> None:
    """Given a sign-in, when its refresh token is used, then new tokens and a new refresh
    token come back and the old one is dead; when the old one is presented again (a stolen
    copy), then it is refused and the current refresh token is revoked as well."""
    first = exchange(provider, code_for(provider))
    clock.now += 4
    second = refresh(provider, first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert (
        claims(issuer, second["id_token"], audience=DEV_AUDIENCE)["exp"]
        == int(clock.now) + TOKEN_TTL_S
    )
    assert provider.is_revoked(first["refresh_token"])
    assert not provider.is_revoked(second["refresh_token"])

    with pytest.raises(OidcError, match="reuse") as caught:
        refresh(provider, first["refresh_token"])
    assert caught.value.error == "invalid_grant"
    with pytest.raises(OidcError, match="revoked"):
        refresh(provider, second["refresh_token"])


def test_refresh_tokens_expire_with_their_sign_in(
    provider: LocalOidcProvider, clock: Clock
) -> None:
    body = exchange(provider, code_for(provider))
    clock.now += 1800
    body = refresh(provider, body["refresh_token"])
    clock.now += 1800  # the sign-in's 3600 s are up, however recently it was rotated
    with pytest.raises(OidcError, match="expired"):
        refresh(provider, body["refresh_token"])


def test_revoke_ends_the_sign_in(provider: LocalOidcProvider) -> None:
    body = exchange(provider, code_for(provider))
    provider.revoke({"client_id": DEV_AUDIENCE, "token": body["refresh_token"]})
    assert provider.is_revoked(body["refresh_token"])
    with pytest.raises(OidcError) as caught:
        refresh(provider, body["refresh_token"])
    assert caught.value.error == "invalid_grant"


@pytest.mark.parametrize("token", ["", "never-issued"])
def test_revoking_an_unknown_token_is_fine(provider: LocalOidcProvider, token: str) -> None:
    provider.revoke({"client_id": DEV_AUDIENCE, "token": token})


def test_revoke_needs_the_client(provider: LocalOidcProvider) -> None:
    with pytest.raises(OidcError) as caught:
        provider.revoke({"token": "x"})
    assert caught.value.error == "invalid_client"


def test_expired_grants_are_forgotten(
    provider: LocalOidcProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes and refresh tokens are held only while they can be used: the store is bounded."""
    import infra.local.oidc as oidc_module

    monkeypatch.setattr(oidc_module, "MAX_LIVE_GRANTS", 2)
    code_for(provider)
    code_for(provider)
    with pytest.raises(RedirectError, match="temporarily_unavailable"):
        code_for(provider)
    clock.now += CODE_TTL_S
    code_for(provider)
