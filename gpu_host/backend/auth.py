"""WebSocket token verification: the control plane's verifier (`lambdas.jwt_verifier`), its
refusals said as the socket says them (the hello is closed with 4401 and the reason)."""

from __future__ import annotations

from lambdas.jwt_verifier import CLOCK_SKEW_S, JwtVerifier, TokenProblem, TokenRejectedError


class UnauthorizedError(Exception):
    """The token is missing, malformed, expired, or not ours."""


class TokenVerifier:
    """Verifies hello tokens; the user is the token's `sub`. `verify` blocks on a key set
    fetch now and then: call it off the event loop."""

    def __init__(
        self, *, jwks_url: str, issuer: str, audience: str, leeway_s: float = CLOCK_SKEW_S
    ) -> None:
        self._jwt = JwtVerifier(
            jwks_url=jwks_url, issuer=issuer, audience=audience, leeway_s=leeway_s
        )

    def verify(self, token: str | None) -> str:
        """Return the token's user (`sub`), or raise `UnauthorizedError` saying why."""
        try:
            return self._jwt.subject(token)
        except TokenRejectedError as rejected:
            raise UnauthorizedError(_reason(rejected)) from rejected


def _reason(rejected: TokenRejectedError) -> str:
    match rejected.problem:
        case TokenProblem.MISSING:
            return "missing token"
        case TokenProblem.NO_SUBJECT:
            return "token has no subject"
        case _:  # an unreachable key set included: the socket cannot wait for it
            return f"invalid token: {rejected.detail}"
