"""Socket tickets: what a browser's WebSocket hello carries instead of its sign-in token.

The control API issues a ticket (`POST /api/sessions/{id}/ticket`); the GPU host's backend
verifies it offline, with no call back to the control plane. A ticket is a compact JWT,
HS256 over a secret both sides hold (`SPINUP_TICKET_SECRET`), with the claims

    sub   the user                     sid   the control API session
    host  the host it is good for      aud   "spinup-socket" (never a sign-in token's)
    iat   issued at                    exp   at most MAX_TTL_S after iat
    jti   unique id, for single use

It is short-lived, single-use and bound to one user, session and host: a ticket copied off
the wire is worth one socket to that host within a minute at most, and not even that once
the browser has used it.

This one module is the contract: the control plane imports it to issue, the backend to
verify (the host's release ships `lambdas/` for it). Pure: no I/O, no AWS, and the clock is
an argument.
"""

from __future__ import annotations

import heapq
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Final, Protocol

import jwt

AUDIENCE: Final = "spinup-socket"
"""A ticket's `aud`. No sign-in token carries it, so neither can pass for the other."""
ALGORITHM: Final = "HS256"
DEFAULT_TTL_S: Final = 30
MAX_TTL_S: Final = 60
"""The longest a ticket may live; the verifier refuses longer ones whoever issued them."""
MIN_SECRET_BYTES: Final = 32
"""HS256 wants a key at least as long as its hash (RFC 7518 §3.2)."""
LEEWAY_S: Final = 5
"""Clock skew tolerated between the issuer (Lambda) and the verifier (the host)."""
REPLAY_CACHE_SIZE: Final = 4096
"""Tickets a replay cache remembers (the backend's is one per host, shared by its workers).
Each is kept until its `exp` (+ leeway), so this admits ~4096 hellos per ticket lifetime —
far above one host's sessions."""
_REQUIRED: Final = ["sub", "sid", "host", "aud", "iat", "exp", "jti"]
_MAX_CLAIM_LENGTH: Final = 256


class TicketError(Exception):
    """The ticket is refused; the message says why (it becomes the close reason)."""


class ExpiredTicketError(TicketError):
    pass


class ReplayedTicketError(TicketError):
    pass


class WrongHostError(TicketError):
    pass


class ReplayCacheFullError(TicketError):
    """Too many live tickets to remember one more: refused (fail closed), not evicted."""


def check_secret(secret: str) -> str:
    """The secret, or ValueError when it is too short to sign tickets with."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the ticket secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def check_ttl(ttl_s: int) -> int:
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"a ticket lives 1 to {MAX_TTL_S} s, not {ttl_s}")
    return ttl_s


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    token: str
    expires_at: int
    """Epoch seconds (the ticket's `exp`)."""


@dataclass(frozen=True, slots=True)
class TicketClaims:
    """A verified ticket: whose, for which session and host, and until when."""

    user: str
    session_id: str
    host_id: str
    ticket_id: str
    expires_at: int


def issue_ticket(
    secret: str,
    *,
    user: str,
    session_id: str,
    host_id: str,
    now: float,
    ttl_s: int = DEFAULT_TTL_S,
) -> IssuedTicket:
    """A fresh single-use ticket for `user`'s session `session_id` on host `host_id`."""
    check_secret(secret)
    check_ttl(ttl_s)
    issued_at = int(now)
    expires_at = issued_at + ttl_s
    claims = {
        "sub": user,
        "sid": session_id,
        "host": host_id,
        "aud": AUDIENCE,
        "iat": issued_at,
        "exp": expires_at,
        "jti": secrets.token_urlsafe(16),
    }
    return IssuedTicket(jwt.encode(claims, secret, algorithm=ALGORITHM), expires_at)


def read_ticket(token: str | None, *, secret: str, host_id: str, now: float) -> TicketClaims:
    """Check the signature, audience, lifetime and host of a ticket; not its single use
    (that is `TicketVerifier`'s, which holds the replay cache). Raises `TicketError`."""
    if not token:
        raise TicketError("missing ticket")
    try:
        # The clock is ours (an argument), so PyJWT checks the signature, audience and the
        # claims' presence, and the times are checked below.
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={
                "require": _REQUIRED,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise TicketError(f"invalid ticket: {exc}") from exc
    issued_at, expires_at = claims["iat"], claims["exp"]
    if not (_is_int(issued_at) and _is_int(expires_at)):
        raise TicketError("invalid ticket: iat and exp must be integers")
    if expires_at - issued_at > MAX_TTL_S or expires_at <= issued_at:
        raise TicketError(f"invalid ticket: it must live 1 to {MAX_TTL_S} s")
    if issued_at > now + LEEWAY_S:
        raise TicketError("invalid ticket: issued in the future")
    if now >= expires_at + LEEWAY_S:
        raise ExpiredTicketError("ticket expired: ask the control API for a fresh one")
    text = {name: claims[name] for name in ("sub", "sid", "host", "jti")}
    bad = sorted(k for k, v in text.items() if not _is_text(v))
    if bad:
        raise TicketError(f"invalid ticket: {', '.join(bad)} must be non-empty strings")
    if text["host"] != host_id:
        raise WrongHostError(f"ticket is for host {text['host']!r}, this is {host_id!r}")
    return TicketClaims(
        user=text["sub"],
        session_id=text["sid"],
        host_id=text["host"],
        ticket_id=text["jti"],
        expires_at=expires_at,
    )


class ReplayGuard(Protocol):
    """Where a verifier records the tickets already used: `ReplayCache` in one process; the
    backend's workers share one host-local store (`gpu_host.backend.host_store`). The
    policy is the same for every implementation: refuse a ticket id seen before
    (`ReplayedTicketError`); remember each one until `forget_at`; when full of live entries,
    refuse the new one (`ReplayCacheFullError`) rather than forget a live one."""

    def claim(self, ticket_id: str, *, forget_at: float, now: float) -> None: ...


class ReplayCache:
    """The ids of the tickets already used, each until it expires — bounded, in memory.

    Drop policy: an entry is dropped once its ticket has expired (it could not be replayed
    anyway). When `max_entries` live entries are held, a new ticket is refused with
    `ReplayCacheFullError` (fail closed): evicting a live entry would let that ticket be
    replayed. Thread-safe (the backend verifies off the event loop).
    """

    def __init__(self, max_entries: int = REPLAY_CACHE_SIZE) -> None:
        if max_entries < 1:
            raise ValueError("the replay cache needs room for at least one ticket")
        self._max = max_entries
        self._seen: dict[str, float] = {}
        self._by_expiry: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def claim(self, ticket_id: str, *, forget_at: float, now: float) -> None:
        """Record `ticket_id` as used until `forget_at`, or raise if it was used before (or
        there is no room to remember it)."""
        with self._lock:
            self._purge(now)
            if ticket_id in self._seen:
                raise ReplayedTicketError("ticket already used: ask for a fresh one")
            if len(self._seen) >= self._max:
                raise ReplayCacheFullError(
                    "too many tickets in flight on this host; try again in a minute"
                )
            self._seen[ticket_id] = forget_at
            heapq.heappush(self._by_expiry, (forget_at, ticket_id))

    def _purge(self, now: float) -> None:
        while self._by_expiry and self._by_expiry[0][0] <= now:
            _, ticket_id = heapq.heappop(self._by_expiry)
            self._seen.pop(ticket_id, None)


class TicketVerifier:
    """Verifies hello tickets for one host: signature, audience, lifetime, host, single use.

    Single use is only as wide as its replay cache: the default `ReplayCache` belongs to this
    process; where several worker processes serve one host they pass one they all share
    (the backend's host-local store), so that a ticket opens one socket per host.
    """

    def __init__(self, *, secret: str, host_id: str, cache: ReplayGuard | None = None) -> None:
        self._secret = check_secret(secret)
        self._host_id = host_id
        self._cache = cache if cache is not None else ReplayCache()

    def verify(self, token: str | None, *, now: float) -> TicketClaims:
        claims = read_ticket(token, secret=self._secret, host_id=self._host_id, now=now)
        # Only verified tickets reach the cache: forged ones cannot fill it.
        self._cache.claim(claims.ticket_id, forget_at=claims.expires_at + LEEWAY_S, now=now)
        return claims


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_CLAIM_LENGTH
