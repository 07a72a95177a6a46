"""Who is calling: the `sub` of a verified JWT, and nothing else.

`jwks`: the app verifies the RS256 bearer token against the issuer's JWKS (local mode, or any
deployment without API Gateway's authorizer). `apigw`: API Gateway's JWT authorizer already
verified it; the claims arrive in the Lambda event (`requestContext.authorizer.jwt.claims`).
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.requests import Request

from lambdas.control.errors import UnauthorizedError, UnavailableError
from lambdas.jwt_verifier import JwtVerifier, TokenProblem, TokenRejectedError, subject_of
from lambdas.settings import Settings


class Authenticator(Protocol):
    def user_of(self, request: Request, token: str | None) -> str:
        """The verified user, or UnauthorizedError."""
        ...


NO_SUBJECT = "The token has no usable 'sub' claim; sign in again."


def _subject(claims: dict[str, Any]) -> str:
    try:
        return subject_of(claims)
    except TokenRejectedError as rejected:
        raise UnauthorizedError(NO_SUBJECT) from rejected


def _as_api_error(
    rejected: TokenRejectedError, issuer: str
) -> UnauthorizedError | UnavailableError:
    """The verifier's refusal as the API answers it: 503 when the keys cannot be fetched (the
    token may be fine), 401 otherwise."""
    detail = rejected.detail
    match rejected.problem:
        case TokenProblem.MISSING:
            return UnauthorizedError(
                "Sign in first: send the access token as 'Authorization: Bearer <JWT>'."
            )
        case TokenProblem.KEYS_UNREACHABLE:
            return UnavailableError(
                "The token signing keys (JWKS) cannot be fetched right now; try again shortly."
            )
        case TokenProblem.UNKNOWN_KEY:
            return UnauthorizedError(
                f"The token is not a JWT signed by a key of {issuer}: {detail}. Sign in again."
            )
        case TokenProblem.EXPIRED:
            return UnauthorizedError("The token has expired; sign in again.")
        case TokenProblem.INVALID:
            return UnauthorizedError(f"The token was rejected: {detail}. Sign in again.")
        case TokenProblem.NO_SUBJECT:
            return UnauthorizedError(NO_SUBJECT)


class JwksAuthenticator:
    def __init__(self, settings: Settings) -> None:
        self._verifier = JwtVerifier(
            jwks_url=settings.jwks_url, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )

    def user_of(self, request: Request, token: str | None) -> str:
        try:
            return self._verifier.subject(token)
        except TokenRejectedError as rejected:
            raise _as_api_error(rejected, self._verifier.issuer) from rejected


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
