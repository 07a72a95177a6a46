"""Socket tickets at the real socket: the hello's ticket is verified offline (signature,
audience, expiry, host, single use), and where tickets are required a sign-in token hello is
refused — each refusal a 4401 with a reason that says why."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import websockets

from lambdas.domain.tickets import issue_ticket
from tests.integration.gpu_host.dataplane_support import (
    TICKET_SECRET,
    RunningBackend,
    TokenIssuer,
    closed_with,
    recv_json,
    unique_user,
)

HOST = "gpu-0"
"""The backends' SPINUP_HOST_ID (the default)."""


def ticket(
    user: str | None = None, *, host: str = HOST, age_s: float = 0, secret: str = TICKET_SECRET
) -> str:
    return issue_ticket(
        secret,
        user=user or unique_user(),
        session_id="c" * 32,
        host_id=host,
        now=time.time() - age_s,
    ).token


def requires_tickets(backend: RunningBackend) -> bool:
    return backend.settings.require_tickets


async def hello(backend: RunningBackend, **fields: Any) -> tuple[dict[str, Any] | None, str]:
    """Send a hello with `fields`; the server's `ready`, or None and the 4401 reason."""
    async with websockets.connect(backend.ws_url) as ws:
        await ws.send(json.dumps({"type": "hello", "models": ["text"], **fields}))
        try:
            return await recv_json(ws, wait_s=10), ""
        except websockets.ConnectionClosed:
            pass
        code, reason = await closed_with(ws)
    assert code == 4401, (code, reason)
    return None, reason


async def test_a_ticket_opens_a_session(ticket_backend: RunningBackend) -> None:
    ready, _ = await hello(ticket_backend, ticket=ticket())
    assert ready is not None
    assert ready["type"] == "ready"
    assert ready["models"] == ["text"]


async def test_a_ticket_opens_one_socket_only(ticket_backend: RunningBackend) -> None:
    once = ticket()
    assert (await hello(ticket_backend, ticket=once))[0] is not None
    ready, reason = await hello(ticket_backend, ticket=once)
    assert ready is None
    assert "already used" in reason


def other_audience() -> str:
    now = int(time.time())
    claims = {"sub": "ann", "sid": "c" * 32, "host": HOST, "aud": "spinup", "jti": "x"}
    return jwt.encode({**claims, "iat": now, "exp": now + 30}, TICKET_SECRET, "HS256")


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: ticket(age_s=120), "ticket expired"),
        (lambda: ticket(secret="a-forger-s-secret-of-at-least-32-bytes"), "invalid ticket"),
        (lambda: ticket()[:-4] + "AAAA", "invalid ticket"),
        (lambda: ticket(host="gpu-7"), "ticket is for host 'gpu-7', this is 'gpu-0'"),
        (other_audience, "invalid ticket"),
    ],
    ids=["expired", "forged", "tampered", "wrong-host", "wrong-audience"],
)
async def test_a_bad_ticket_closes_4401_saying_why(
    ticket_backend: RunningBackend, make: Callable[[], str], words: str
) -> None:
    ready, reason = await hello(ticket_backend, ticket=make())
    assert ready is None
    assert words in reason


async def test_a_sign_in_token_is_refused_only_where_tickets_are_required(
    ticket_backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    ready, reason = await hello(ticket_backend, token=token_issuer.token(unique_user()))
    if requires_tickets(ticket_backend):
        assert ready is None
        assert "token hellos are refused here" in reason
        assert "POST /api/sessions/{id}/ticket" in reason
    else:
        assert ready is not None
        assert ready["type"] == "ready"


async def test_a_sign_in_token_is_no_ticket(
    ticket_backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    ready, reason = await hello(ticket_backend, ticket=token_issuer.token(unique_user()))
    assert ready is None
    assert "invalid ticket" in reason


async def test_a_hello_without_credentials_closes_4401(ticket_backend: RunningBackend) -> None:
    ready, reason = await hello(ticket_backend)
    assert ready is None
    assert ("missing ticket" if requires_tickets(ticket_backend) else "missing token") in reason


async def test_a_ticket_is_judged_before_a_token(
    ticket_backend: RunningBackend, token_issuer: TokenIssuer
) -> None:
    good_token = token_issuer.token(unique_user())
    ready, reason = await hello(ticket_backend, ticket=ticket(age_s=120), token=good_token)
    assert ready is None
    assert "ticket expired" in reason


async def test_tickets_count_against_the_per_user_limit(ticket_backend: RunningBackend) -> None:
    user = unique_user()
    sockets = []
    for _ in range(ticket_backend.settings.max_sessions_per_user):
        ws = await websockets.connect(ticket_backend.ws_url)
        await ws.send(json.dumps({"type": "hello", "ticket": ticket(user)}))
        assert (await recv_json(ws))["type"] == "ready"
        sockets.append(ws)
    async with websockets.connect(ticket_backend.ws_url) as ws:
        await ws.send(json.dumps({"type": "hello", "ticket": ticket(user)}))
        assert (await closed_with(ws))[0] == 4429
    for ws in sockets:
        await ws.close()
