"""WebSocket hello authentication: socket tickets (HS256, verified offline, single use) and,
where tickets are not required, sign-in tokens (RS256 JWTs checked against the issuer's JWKS).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from lambdas.domain.tickets import TicketError, TicketVerifier

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
