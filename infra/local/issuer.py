"""A development token issuer: what Cognito is in AWS, for the local mode and the tests.

It holds one RSA key for its lifetime, publishes its JWKS, and signs RS256 tokens that the
control API and the backend verify exactly as they verify Cognito's.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

DEV_AUDIENCE = "spinup"
DEV_USER = "dev-user"
DEFAULT_TTL_S = 12 * 3600


class DevIssuer:
    def __init__(
        self, *, issuer: str, audience: str = DEV_AUDIENCE, kid: str | None = None
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid or uuid.uuid4().hex[:16]

    def jwks(self) -> dict[str, Any]:
        """The public key set, as served at `/.well-known/jwks.json`."""
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self.key.public_key(), as_dict=True
        )
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def issue(
        self,
        user: str | None = DEV_USER,
        *,
        ttl_s: int = DEFAULT_TTL_S,
        now: float | None = None,
        key: Any = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """A token for `user`, valid for `ttl_s` seconds.

        `claims` override the standard ones; a claim set to None is left out (tests use
        that, and `key`/`kid`, to make tokens that must be refused).
        """
        issued = int(time.time() if now is None else now)
        body: dict[str, Any] = {
            "sub": user,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "exp": issued + ttl_s,
        }
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(
            body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )
