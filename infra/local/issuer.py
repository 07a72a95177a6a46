"""A development token issuer: what Cognito is in AWS, for the local mode.

It holds one RSA key for the life of the process, publishes its JWKS, and signs RS256
tokens that the control API and the backend verify exactly as they verify Cognito's.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

DEV_AUDIENCE = "spinup"
DEV_USER = "dev-user"


class DevIssuer:
    def __init__(self, *, issuer: str, audience: str = DEV_AUDIENCE) -> None:
        self.issuer = issuer
        self.audience = audience
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = uuid.uuid4().hex[:16]

    def jwks(self) -> dict[str, Any]:
        """The public key set, as served at `/.well-known/jwks.json`."""
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self._key.public_key(), as_dict=True
        )
        jwk.update({"kid": self._kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def issue(
        self, *, user: str = DEV_USER, ttl_s: int = 12 * 3600, now: float | None = None
    ) -> str:
        """A signed token for `user`, valid for `ttl_s` seconds."""
        issued = int(time.time() if now is None else now)
        claims = {
            "sub": user,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "exp": issued + ttl_s,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})
