"""Hello authentication: sign-in tokens against a JWKS served over HTTP, and the choice
between a hello's ticket and its token."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest

from gpu_host.backend.auth import HelloAuthenticator, TokenVerifier, UnauthorizedError
from infra.local.ports import free_port
from lambdas.domain.tickets import TicketVerifier, issue_ticket
from tests.integration.gpu_host.dataplane_support import TICKET_SECRET, TokenIssuer


@pytest.fixture
def verifier(token_issuer: TokenIssuer) -> TokenVerifier:
    return TokenVerifier(
        jwks_url=token_issuer.jwks_url, issuer=token_issuer.issuer, audience=token_issuer.audience
    )


def test_a_good_token_names_its_user(verifier: TokenVerifier, token_issuer: TokenIssuer) -> None:
    assert verifier.verify(token_issuer.token("ann")) == "ann"


def test_clock_skew_within_leeway_is_tolerated(
    verifier: TokenVerifier, token_issuer: TokenIssuer
) -> None:
    assert verifier.verify(token_issuer.token("ann", exp=int(time.time()) - 10)) == "ann"


def unsigned(issuer: TokenIssuer) -> str:
    claims = {"sub": "ann", "iss": issuer.issuer, "aud": issuer.audience, "exp": 2_000_000_000}
    return jwt.encode(claims, key="", algorithm="none", headers={"kid": issuer.kid})


def hmac_signed(issuer: TokenIssuer) -> str:
    """The classic confusion: HS256 "signed" with the public key as the secret."""
    claims = {"sub": "ann", "iss": issuer.issuer, "aud": issuer.audience, "exp": 2_000_000_000}
    return jwt.encode(
        claims, "a-shared-secret-of-32-bytes-len!", algorithm="HS256", headers={"kid": issuer.kid}
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda i: "", "missing token"),
        (lambda i: None, "missing token"),
        (lambda i: i.token(kid="rotated-away"), "invalid token"),
        (lambda i: i.token(exp=None), "invalid token"),
        (lambda i: i.token(sub=""), "no subject"),
        (unsigned, "invalid token"),
        (hmac_signed, "invalid token"),
    ],
    ids=["empty", "none", "unknown-kid", "no-exp", "empty-sub", "alg-none", "alg-hs256"],
)
def test_bad_tokens_are_unauthorized(
    verifier: TokenVerifier,
    token_issuer: TokenIssuer,
    make: Callable[[TokenIssuer], str | None],
    reason: str,
) -> None:
    with pytest.raises(UnauthorizedError, match=reason):
        verifier.verify(make(token_issuer))


def test_unreachable_jwks_is_unauthorized_not_a_crash(token_issuer: TokenIssuer) -> None:
    verifier = TokenVerifier(
        jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json",
        issuer=token_issuer.issuer,
        audience=token_issuer.audience,
    )
    with pytest.raises(UnauthorizedError, match="invalid token"):
        verifier.verify(token_issuer.token())


def test_a_host_without_a_ticket_secret_takes_tokens_but_no_tickets(
    verifier: TokenVerifier, token_issuer: TokenIssuer
) -> None:
    hellos = HelloAuthenticator(tokens=verifier, tickets=None, require_tickets=False)
    assert hellos.verify(ticket=None, token=token_issuer.token("ann")).user == "ann"
    ticket = issue_ticket(TICKET_SECRET, user="ann", session_id="s", host_id="h", now=time.time())
    with pytest.raises(UnauthorizedError, match="takes no tickets"):
        hellos.verify(ticket=ticket.token, token=None)


def test_a_ticket_names_the_control_session(verifier: TokenVerifier) -> None:
    hellos = HelloAuthenticator(
        tokens=verifier,
        tickets=TicketVerifier(secret=TICKET_SECRET, host_id="h"),
        require_tickets=True,
        clock=lambda: 1_800_000_010.0,
    )
    ticket = issue_ticket(TICKET_SECRET, user="ann", session_id="s1", host_id="h", now=1.8e9)
    caller = hellos.verify(ticket=ticket.token, token=None)
    assert (caller.user, caller.session_id) == ("ann", "s1")


def test_requiring_tickets_needs_a_ticket_verifier(verifier: TokenVerifier) -> None:
    with pytest.raises(ValueError, match="needs a ticket verifier"):
        HelloAuthenticator(tokens=verifier, tickets=None, require_tickets=True)
