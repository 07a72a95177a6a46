"""The one verifier of user tokens: RS256 JWTs checked against the issuer's JWKS.

The control API (`lambdas.control.auth`, jwks mode) and the GPU backend's socket hello
(`gpu_host.backend.auth`) verify the same tokens with the same rules; each maps a
`TokenRejectedError` to its own answer (HTTP 401/503, close code 4401) by its `problem`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import jwt

ALGORITHMS = ("RS256",)
"""Asymmetric only: a token "signed" with HS256 and the public key as its secret is refused."""
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
CLOCK_SKEW_S = 30.0
MAX_SUBJECT_LENGTH = 256
JWKS_CACHE_S = 300
"""How long the fetched key set is trusted; a token naming an unknown `kid` refetches it."""
JWKS_TIMEOUT_S = 5


class TokenProblem(StrEnum):
    MISSING = "missing"
    KEYS_UNREACHABLE = "keys_unreachable"
    """The key set could not be fetched: the token may be fine, try again later."""
    UNKNOWN_KEY = "unknown_key"
    """Not a JWT, or signed by no key of the issuer's key set."""
    EXPIRED = "expired"
    INVALID = "invalid"
    """Bad signature, wrong issuer or audience, a required claim missing."""
    NO_SUBJECT = "no_subject"


class TokenRejectedError(Exception):
    """Why a token was not accepted: `problem` for the caller to map, `detail` from PyJWT."""

    def __init__(self, problem: TokenProblem, detail: str) -> None:
        super().__init__(f"{problem}: {detail}")
        self.problem = problem
        self.detail = detail


def subject_of(claims: dict[str, Any]) -> str:
    """The user a token's claims name: a non-empty `sub` of bounded length."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUBJECT_LENGTH:
        raise TokenRejectedError(TokenProblem.NO_SUBJECT, "no usable 'sub' claim")
    return sub


class JwtVerifier:
    """Verifies a token and names its user (`sub`).

    `PyJWKClient` caches the key set and refetches it when a token names an unknown `kid`
    (key rotation). Its fetch blocks: an async caller calls `subject` off the event loop.
    """

    def __init__(
        self, *, jwks_url: str, issuer: str, audience: str, leeway_s: float = CLOCK_SKEW_S
    ) -> None:
        self._keys = jwt.PyJWKClient(
            jwks_url, cache_jwk_set=True, lifespan=JWKS_CACHE_S, timeout=JWKS_TIMEOUT_S
        )
        self.issuer = issuer
        self._audience = audience
        self._leeway_s = leeway_s

    def subject(self, token: str | None) -> str:
        """The token's user, or `TokenRejectedError` saying why not."""
        return subject_of(self.claims(token))

    def claims(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise TokenRejectedError(TokenProblem.MISSING, "no token")
        try:
            key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as error:
            raise TokenRejectedError(TokenProblem.KEYS_UNREACHABLE, str(error)) from error
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as error:
            raise TokenRejectedError(TokenProblem.UNKNOWN_KEY, str(error)) from error
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                issuer=self.issuer,
                audience=self._audience,
                leeway=self._leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenRejectedError(TokenProblem.EXPIRED, str(error)) from error
        except jwt.InvalidTokenError as error:
            raise TokenRejectedError(TokenProblem.INVALID, str(error)) from error
        return claims
