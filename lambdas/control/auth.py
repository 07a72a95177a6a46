"""Who is calling: the `sub` of a verified JWT, and nothing else.

`jwks`: the app verifies the RS256 bearer token against the issuer's JWKS (local mode, or any
deployment without API Gateway's authorizer). `apigw`: API Gateway's JWT authorizer already
verified it; the claims arrive in the Lambda event (`requestContext.authorizer.jwt.claims`).
"""

from __future__ import annotations

from typing import Any, Protocol

import jwt
from starlette.requests import Request

from lambdas.control.errors import UnauthorizedError, UnavailableError
from lambdas.settings import Settings

MAX_SUBJECT_LENGTH = 256
CLOCK_SKEW_S = 30


class Authenticator(Protocol):
    def user_of(self, request: Request, token: str | None) -> str:
        """The verified user, or UnauthorizedError."""
        ...


def _subject(claims: dict[str, Any]) -> str:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUBJECT_LENGTH:
        raise UnauthorizedError("The token has no usable 'sub' claim; sign in again.")
    return sub


class JwksAuthenticator:
    def __init__(self, settings: Settings) -> None:
        self._keys = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300, timeout=5)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience

    def user_of(self, request: Request, token: str | None) -> str:
        if not token:
            raise UnauthorizedError(
                "Sign in first: send the access token as 'Authorization: Bearer <JWT>'."
            )
        try:
            key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as error:
            raise UnavailableError(
                "The token signing keys (JWKS) cannot be fetched right now; try again shortly."
            ) from error
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as error:
            raise UnauthorizedError(
                f"The token is not a JWT signed by a key of {self._issuer}: {error}. Sign in again."
            ) from error
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise UnauthorizedError("The token has expired; sign in again.") from error
        except jwt.InvalidTokenError as error:
            raise UnauthorizedError(f"The token was rejected: {error}. Sign in again.") from error
        return _subject(claims)


class ApiGatewayAuthenticator:
    """Trusts the claims API Gateway's JWT authorizer put in the event, and only those."""

    def user_of(self, request: Request, token: str | None) -> str:
        event: Any = request.scope.get("aws.event")
        try:
            claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
        except (KeyError, TypeError) as error:
            raise UnauthorizedError(
                "No verified identity: call the API through API Gateway with "
                "'Authorization: Bearer <JWT>'."
            ) from error
        if not isinstance(claims, dict):
            raise UnauthorizedError("No verified identity in the request; sign in again.")
        return _subject(claims)


def make_authenticator(settings: Settings) -> Authenticator:
    if settings.auth_mode == "apigw":
        return ApiGatewayAuthenticator()
    return JwksAuthenticator(settings)
