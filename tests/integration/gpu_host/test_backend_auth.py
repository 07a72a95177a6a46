"""Token verification against a JWKS served over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest

from gpu_host.backend.auth import TokenVerifier, UnauthorizedError
from infra.local.ports import free_port
from tests.integration.gpu_host.dataplane_support import TokenIssuer


@pytest.fixture
def verifier(token_issuer: TokenIssuer) -> TokenVerifier:
    return TokenVerifier(
        jwks_url=token_issuer.jwks_url, issuer=token_issuer.issuer, audience=token_issuer.audience
    )


def test_a_good_token_names_its_user(verifier: TokenVerifier, token_issuer: TokenIssuer) -> None:
    assert verifier.verify(token_issuer.token("ann")) == "ann"


def test_clock_skew_within_leeway_is_tolerated(
    verifier: TokenVerifier, token_issuer: TokenIssuer
) -> None:
    assert verifier.verify(token_issuer.token("ann", exp=int(time.time()) - 10)) == "ann"


def unsigned(issuer: TokenIssuer) -> str:
    claims = {"sub": "ann", "iss": issuer.issuer, "aud": issuer.audience, "exp": 2_000_000_000}
    return jwt.encode(claims, key="", algorithm="none", headers={"kid": issuer.kid})


def hmac_signed(issuer: TokenIssuer) -> str:
    """The classic confusion: HS256 "signed" with the public key as the secret."""
    claims = {"sub": "ann", "iss": issuer.issuer, "aud": issuer.audience, "exp": 2_000_000_000}
    return jwt.encode(
        claims, "a-shared-secret-of-32-bytes-len!", algorithm="HS256", headers={"kid": issuer.kid}
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda i: "", "missing token"),
        (lambda i: None, "missing token"),
        (lambda i: i.token(kid="rotated-away"), "invalid token"),
        (lambda i: i.token(exp=None), "invalid token"),
        (lambda i: i.token(sub=""), "no subject"),
        (unsigned, "invalid token"),
        (hmac_signed, "invalid token"),
    ],
    ids=["empty", "none", "unknown-kid", "no-exp", "empty-sub", "alg-none", "alg-hs256"],
)
def test_bad_tokens_are_unauthorized(
    verifier: TokenVerifier,
    token_issuer: TokenIssuer,
    make: Callable[[TokenIssuer], str | None],
    reason: str,
) -> None:
    with pytest.raises(UnauthorizedError, match=reason):
        verifier.verify(make(token_issuer))


def test_unreachable_jwks_is_unauthorized_not_a_crash(token_issuer: TokenIssuer) -> None:
    verifier = TokenVerifier(
        jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json",
        issuer=token_issuer.issuer,
        audience=token_issuer.audience,
    )
    with pytest.raises(UnauthorizedError, match="invalid token"):
        verifier.verify(token_issuer.token())
