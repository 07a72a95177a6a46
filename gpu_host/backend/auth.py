"""WebSocket hello authentication: socket tickets (HS256, verified offline, single use) and,
where tickets are not required, sign-in tokens (the control plane's verifier,
`lambdas.jwt_verifier`). Refusals are said as the socket says them: the hello is closed with
4401 and the reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lambdas.domain.tickets import TicketError, TicketVerifier
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


@dataclass(frozen=True, slots=True)
class Caller:
    """Whom a hello speaks for."""

    user: str
    session_id: str | None
    """The control API session its ticket names; None for a sign-in token hello."""


class HelloAuthenticator:
    """Authenticates a hello by its ticket (lambdas.domain.tickets) or, where tickets are
    not required (local mode), by its sign-in token. A hello with both is judged by its
    ticket. The token path may fetch the JWKS: call `verify` off the event loop."""

    def __init__(
        self,
        *,
        tokens: TokenVerifier,
        tickets: TicketVerifier | None,
        require_tickets: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if require_tickets and tickets is None:
            raise ValueError("requiring tickets needs a ticket verifier")
        self._tokens = tokens
        self._tickets = tickets
        self._require_tickets = require_tickets
        self._clock = clock

    def verify(self, *, ticket: str | None, token: str | None) -> Caller:
        """The caller, or `UnauthorizedError` saying why (it becomes the 4401 reason)."""
        if ticket is not None:
            if self._tickets is None:
                raise UnauthorizedError("this host takes no tickets (SPINUP_TICKET_SECRET unset)")
            try:
                claims = self._tickets.verify(ticket, now=self._clock())
            except TicketError as exc:
                raise UnauthorizedError(str(exc)) from exc
            return Caller(user=claims.user, session_id=claims.session_id)
        if self._require_tickets:
            what = "token hellos are refused here" if token else "missing ticket"
            raise UnauthorizedError(f"{what}: send a ticket from POST /api/sessions/{{id}}/ticket")
        return Caller(user=self._tokens.verify(token), session_id=None)
