"""Socket tickets (lambdas.domain.tickets): issue, verify, expiry, tampering, host and
audience binding, single use, and the replay cache's bound."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from lambdas.domain import tickets
from lambdas.domain.tickets import (
    ExpiredTicketError,
    ReplayCache,
    ReplayCacheFullError,
    ReplayedTicketError,
    TicketError,
    TicketVerifier,
    WrongHostError,
    issue_ticket,
    read_ticket,
)

SECRET = "s" * 32 + "-the-tickets-shared-secret"
NOW = 1_800_000_000.0
HOST = "gpu-0"


def issue(*, now: float = NOW, ttl_s: int = tickets.DEFAULT_TTL_S, host: str = HOST) -> str:
    return issue_ticket(
        SECRET, user="ann", session_id="a" * 32, host_id=host, now=now, ttl_s=ttl_s
    ).token


def signed(secret: str = SECRET, **changes: Any) -> str:
    """A ticket with hand-made claims; a claim set to None is left out."""
    claims: dict[str, Any] = {
        "sub": "ann",
        "sid": "a" * 32,
        "host": HOST,
        "aud": tickets.AUDIENCE,
        "iat": int(NOW),
        "exp": int(NOW) + 30,
        "jti": "ticket-1",
    }
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, "HS256")


@pytest.fixture
def verifier() -> TicketVerifier:
    return TicketVerifier(secret=SECRET, host_id=HOST)


def test_an_issued_ticket_names_its_user_session_and_host(verifier: TicketVerifier) -> None:
    issued = issue_ticket(SECRET, user="ann", session_id="a" * 32, host_id=HOST, now=NOW + 0.7)
    claims = verifier.verify(issued.token, now=NOW + 1)
    assert (claims.user, claims.session_id, claims.host_id) == ("ann", "a" * 32, HOST)
    assert issued.expires_at == claims.expires_at == int(NOW) + tickets.DEFAULT_TTL_S
    assert issued.token.count(".") == 2, "a compact JWT"


def test_every_ticket_has_its_own_id() -> None:
    ids = {read_ticket(issue(), secret=SECRET, host_id=HOST, now=NOW).ticket_id for _ in range(50)}
    assert len(ids) == 50


def test_a_ticket_is_single_use(verifier: TicketVerifier) -> None:
    token = issue()
    verifier.verify(token, now=NOW)
    with pytest.raises(ReplayedTicketError, match="already used"):
        verifier.verify(token, now=NOW + 1)


@pytest.mark.parametrize(
    ("age_s", "accepted"),
    [(0, True), (29, True), (30 + tickets.LEEWAY_S - 1, True), (30 + tickets.LEEWAY_S, False)],
)
def test_a_ticket_expires_after_its_ttl_and_the_leeway(
    verifier: TicketVerifier, age_s: int, accepted: bool
) -> None:
    token = issue(ttl_s=30)
    if accepted:
        verifier.verify(token, now=NOW + age_s)
    else:
        with pytest.raises(ExpiredTicketError, match="expired"):
            verifier.verify(token, now=NOW + age_s)


def flip_signature(token: str) -> str:
    head, body, signature = token.split(".")
    return f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"


def swap_subject(token: str) -> str:
    """The claims rewritten to another user, the signature kept."""
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: "", TicketError, "missing ticket"),
        (lambda: "not.a.jwt", TicketError, "invalid ticket"),
        (lambda: flip_signature(issue()), TicketError, "invalid ticket"),
        (lambda: swap_subject(issue()), TicketError, "invalid ticket"),
        (lambda: signed(secret="another-secret-of-at-least-32-bytes!"), TicketError, "invalid"),
        (lambda: jwt.encode({"sub": "ann"}, key="", algorithm="none"), TicketError, "invalid"),
        (lambda: signed(aud="spinup"), TicketError, "(?i)audience"),
        (lambda: signed(aud=None), TicketError, "aud"),
        (lambda: signed(jti=None), TicketError, "jti"),
        (lambda: signed(host=None), TicketError, "host"),
        (lambda: signed(sid=""), TicketError, "sid"),
        (lambda: signed(sub=7), TicketError, "invalid"),
        (lambda: signed(exp=int(NOW) + 600), TicketError, "1 to 60 s"),
        (lambda: signed(iat=int(NOW) + 60, exp=int(NOW) + 90), TicketError, "future"),
        (lambda: signed(iat="now"), TicketError, "invalid"),
        (lambda: issue(host="gpu-1"), WrongHostError, "for host 'gpu-1', this is 'gpu-0'"),
        (lambda: issue(now=NOW - 120), ExpiredTicketError, "expired"),
    ],
    ids=[
        "empty",
        "garbage",
        "bad-signature",
        "tampered-claims",
        "other-secret",
        "alg-none",
        "sign-in-audience",
        "no-audience",
        "no-jti",
        "no-host",
        "empty-session",
        "non-string-user",
        "too-long-lived",
        "issued-in-the-future",
        "non-integer-iat",
        "wrong-host",
        "expired",
    ],
)
def test_bad_tickets_are_refused_with_a_reason(
    verifier: TicketVerifier, make: Callable[[], str], error: type[TicketError], words: str
) -> None:
    with pytest.raises(error, match=words):
        verifier.verify(make(), now=NOW)


def test_a_sign_in_token_is_not_a_ticket(verifier: TicketVerifier) -> None:
    """An RS256 sign-in token (another key, algorithm and audience) never passes."""
    from infra.local.issuer import DevIssuer

    with pytest.raises(TicketError, match="invalid ticket"):
        verifier.verify(DevIssuer(issuer="https://issuer.test").issue("ann"), now=NOW)


def test_refused_tickets_take_no_room_in_the_replay_cache() -> None:
    cache = ReplayCache(max_entries=1)
    verifier = TicketVerifier(secret=SECRET, host_id=HOST, cache=cache)
    for _ in range(5):
        with pytest.raises(WrongHostError):
            verifier.verify(issue(host="gpu-9"), now=NOW)
    assert len(cache) == 0
    verifier.verify(issue(), now=NOW)


def test_a_full_cache_refuses_new_tickets_rather_than_forget_live_ones() -> None:
    cache = ReplayCache(max_entries=3)
    verifier = TicketVerifier(secret=SECRET, host_id=HOST, cache=cache)
    used = [issue() for _ in range(3)]
    for token in used:
        verifier.verify(token, now=NOW)
    with pytest.raises(ReplayCacheFullError, match="too many tickets"):
        verifier.verify(issue(), now=NOW + 1)
    with pytest.raises(ReplayedTicketError):
        verifier.verify(used[0], now=NOW + 2)
    assert len(cache) == 3


def test_expired_entries_make_room() -> None:
    cache = ReplayCache(max_entries=2)
    verifier = TicketVerifier(secret=SECRET, host_id=HOST, cache=cache)
    verifier.verify(issue(ttl_s=10), now=NOW)
    verifier.verify(issue(ttl_s=60), now=NOW)
    later = NOW + 10 + tickets.LEEWAY_S
    verifier.verify(issue(now=later), now=later)
    assert len(cache) == 2


@pytest.mark.parametrize("secret", ["", "short", "x" * (tickets.MIN_SECRET_BYTES - 1)])
def test_a_short_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        tickets.check_secret(secret)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TicketVerifier(secret=secret, host_id=HOST)


@pytest.mark.parametrize("ttl_s", [0, 61, 3600])
def test_the_ttl_is_at_most_a_minute(ttl_s: int) -> None:
    with pytest.raises(ValueError, match="1 to 60 s"):
        issue(ttl_s=ttl_s)


def test_the_cache_needs_room() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ReplayCache(max_entries=0)
