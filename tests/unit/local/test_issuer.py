"""The development issuer signs tokens that verify against the JWKS it publishes."""

from __future__ import annotations

import jwt
import pytest

from infra.local.issuer import DEV_AUDIENCE, DEV_USER, DevIssuer

ISSUER = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def issuer() -> DevIssuer:
    return DevIssuer(issuer=ISSUER)


def verify(issuer: DevIssuer, token: str) -> dict[str, object]:
    key = jwt.PyJWKSet.from_dict(issuer.jwks())[issuer.kid].key
    claims: dict[str, object] = jwt.decode(
        token, key, algorithms=["RS256"], audience=DEV_AUDIENCE, issuer=ISSUER
    )
    return claims


def test_a_token_verifies_against_the_published_keys(issuer: DevIssuer) -> None:
    claims = verify(issuer, issuer.issue(now=1_000, ttl_s=60_000_000_000))
    assert claims["sub"] == DEV_USER
    assert claims["exp"] == 1_000 + 60_000_000_000
    assert jwt.get_unverified_header(issuer.issue())["kid"] == issuer.kid


def test_a_claim_set_to_none_is_left_out(issuer: DevIssuer) -> None:
    claims = verify(issuer, issuer.issue("ann", nbf=None, extra="x"))
    assert claims["sub"] == "ann"
    assert claims["extra"] == "x"
    assert "nbf" not in claims


def test_another_issuers_key_does_not_verify(issuer: DevIssuer) -> None:
    stranger = DevIssuer(issuer=ISSUER, kid=issuer.kid)
    with pytest.raises(jwt.InvalidSignatureError):
        verify(issuer, stranger.issue())


def test_an_expired_token_is_refused(issuer: DevIssuer) -> None:
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(issuer, issuer.issue(now=1_000, ttl_s=60))
