"""The one token verifier of the control API and the GPU backend, against a JWKS over HTTP:
each way a token fails has its own `TokenProblem`, which each side maps to its answer."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest

from infra.local.ports import free_port
from lambdas.jwt_verifier import JwtVerifier, TokenProblem, TokenRejectedError
from tests.integration.control.harness import AUDIENCE, ISSUER, Issuer


@pytest.fixture
def verifier(issuer: Issuer) -> JwtVerifier:
    return JwtVerifier(jwks_url=issuer.jwks_url, issuer=ISSUER, audience=AUDIENCE)


def hmac_signed(issuer: Issuer) -> str:
    """The classic confusion: HS256 "signed" with a shared secret, naming our key id."""
    claims = {"sub": "ann", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}
    return jwt.encode(claims, "a-shared-secret-of-32-bytes-len!", "HS256", {"kid": issuer.kid})


def test_a_good_token_names_its_user(verifier: JwtVerifier, issuer: Issuer) -> None:
    assert verifier.subject(issuer.token("ann")) == "ann"


def test_clock_skew_within_the_leeway_is_tolerated(verifier: JwtVerifier, issuer: Issuer) -> None:
    assert verifier.subject(issuer.token("ann", exp=int(time.time()) - 10)) == "ann"


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda i: None, TokenProblem.MISSING),
        (lambda i: "", TokenProblem.MISSING),
        (lambda i: "not-a-jwt", TokenProblem.UNKNOWN_KEY),
        (lambda i: i.token(kid="rotated-away"), TokenProblem.UNKNOWN_KEY),
        (lambda i: i.token(exp=int(time.time()) - 3600), TokenProblem.EXPIRED),
        (lambda i: i.token(exp=None), TokenProblem.INVALID),
        (lambda i: i.token(aud="someone-else"), TokenProblem.INVALID),
        (lambda i: i.token(iss="https://evil.test"), TokenProblem.INVALID),
        (hmac_signed, TokenProblem.INVALID),
        (lambda i: i.token(sub=""), TokenProblem.NO_SUBJECT),
        (lambda i: i.token(sub="x" * 257), TokenProblem.NO_SUBJECT),
    ],
    ids=[
        "none",
        "empty",
        "garbage",
        "unknown-kid",
        "expired",
        "no-exp",
        "audience",
        "issuer",
        "alg-hs256",
        "empty-sub",
        "long-sub",
    ],
)
def test_each_refusal_says_why(
    verifier: JwtVerifier,
    issuer: Issuer,
    make: Callable[[Issuer], str | None],
    problem: TokenProblem,
) -> None:
    with pytest.raises(TokenRejectedError) as refused:
        verifier.subject(make(issuer))
    assert refused.value.problem is problem


def test_an_unreachable_key_set_is_its_own_problem(issuer: Issuer) -> None:
    verifier = JwtVerifier(
        jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json", issuer=ISSUER, audience=AUDIENCE
    )
    with pytest.raises(TokenRejectedError) as refused:
        verifier.subject(issuer.token())
    assert refused.value.problem is TokenProblem.KEYS_UNREACHABLE
