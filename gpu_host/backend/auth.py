"""WebSocket token verification: RS256 JWTs checked against the issuer's JWKS."""

from __future__ import annotations

import jwt

ALGORITHMS = ["RS256"]
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]


class UnauthorizedError(Exception):
    """The token is missing, malformed, expired, or not ours."""


class TokenVerifier:
    """Verifies hello tokens; the user is the token's `sub`.

    `PyJWKClient` caches the key set and refetches it when a token names an unknown `kid`
    (key rotation). Its fetch blocks: call `verify` off the event loop.
    """

    def __init__(
        self, *, jwks_url: str, issuer: str, audience: str, leeway_s: float = 30.0
    ) -> None:
        self._jwks = jwt.PyJWKClient(jwks_url, cache_jwk_set=True, lifespan=300, timeout=5)
        self._issuer = issuer
        self._audience = audience
        self._leeway_s = leeway_s

    def verify(self, token: str | None) -> str:
        """Return the token's user (`sub`), or raise `UnauthorizedError` saying why."""
        if not token:
            raise UnauthorizedError("missing token")
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway_s,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:  # PyJWKClientError (no key, JWKS unreachable) included
            raise UnauthorizedError(f"invalid token: {exc}") from exc
        user = claims.get("sub")
        if not isinstance(user, str) or not user:
            raise UnauthorizedError("token has no subject")
        return user
