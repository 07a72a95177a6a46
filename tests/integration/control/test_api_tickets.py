"""`POST /api/sessions/{id}/ticket` against moto: a single-use socket ticket for the session's
owner, bound to the session and the host it is placed on, once that host is ready; refused
before, and for others' and ended sessions."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from lambdas.control import lambda_handler
from lambdas.domain.tickets import TicketClaims, read_ticket
from tests.integration.control.harness import (
    TICKET_SECRET,
    WS_BASE_URL,
    Aws,
    Clock,
    Issuer,
    host_of,
    ready_session,
    start,
    status,
)
from tests.integration.control.test_api_auth import CONTEXT, http_api_event

pytestmark = pytest.mark.timeout(60)


async def ask(
    api: httpx.AsyncClient, issuer: Issuer, session_id: str, user: str = "alice"
) -> httpx.Response:
    return await api.post(f"/api/sessions/{session_id}/ticket", headers=issuer.headers(user))


def verified(
    body: dict[str, Any], now: float, host_id: str, secret: str = TICKET_SECRET
) -> TicketClaims:
    return read_ticket(body["ticket"], secret=secret, host_id=host_id, now=now)


async def test_the_owner_gets_a_ticket_for_the_session_and_its_host(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session, host = await ready_session(api, issuer, aws, clock)

    answer = await ask(api, issuer, session)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"ticket", "ws_url", "expires_at"}
    assert body["ws_url"] == f"{WS_BASE_URL}/{host}/inference"
    assert body["expires_at"] == int(clock.now) + 30
    claims = verified(body, clock.now, host)
    assert (claims.user, claims.session_id, claims.host_id) == ("alice", session, host)
    status_body = await status(api, issuer)
    assert status_body["ws_url"] == body["ws_url"]
    assert status_body["sessions"][0]["ws_url"] == body["ws_url"]


@pytest.mark.parametrize("overrides", [{"sessions_per_host": 1}])
async def test_no_ticket_before_the_session_is_placed_on_a_ready_host(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    """Given two hosts, one session each: a third user's session waits for a place, and a
    placed session's host is still booting; neither gets a ticket until its host is ready,
    and each then gets its own host's socket."""
    placed = {}
    for user in ("alice", "bob"):
        placed[user] = await start(api, issuer, user)
        clock.advance(1)  # the oldest waiting session is placed first
    waiting = await start(api, issuer, "carol")
    await status(api, issuer)
    await status(api, issuer)
    assert host_of(aws, "carol", waiting) is None
    assert (await status(api, issuer, "carol"))["sessions"][0]["phase"] == "starting"
    for user, session in {**placed, "carol": waiting}.items():
        answer = await ask(api, issuer, session, user)
        assert answer.status_code == 409
        assert "not ready yet" in answer.json()["detail"]

    hosts = {user: host_of(aws, user, session) for user, session in placed.items()}
    for host in hosts.values():
        assert host is not None
        aws.report_ready(host, clock.advance(60))
    await status(api, issuer)

    for user, session in placed.items():
        answer = await ask(api, issuer, session, user)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["ws_url"] == f"{WS_BASE_URL}/{hosts[user]}/inference"
        assert verified(body, clock.now, str(hosts[user])).host_id == hosts[user]
    assert (await ask(api, issuer, waiting, "carol")).status_code == 409


async def test_every_connection_gets_a_fresh_ticket(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session, host = await ready_session(api, issuer, aws, clock)
    first, second = [(await ask(api, issuer, session)).json() for _ in range(2)]
    assert first["ticket"] != second["ticket"]
    assert verified(first, clock.now, host).ticket_id != verified(second, clock.now, host).ticket_id


async def test_asking_for_a_ticket_is_not_activity(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session, host = await ready_session(api, issuer, aws, clock)
    generation = aws.host(host).generation
    assert (await ask(api, issuer, session)).status_code == 200
    assert aws.host(host).generation == generation


@pytest.mark.parametrize("overrides", [{"ticket_ttl_s": 60}])
async def test_the_ttl_setting_sets_the_expiry(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session, _ = await ready_session(api, issuer, aws, clock)
    body = (await ask(api, issuer, session)).json()
    assert body["expires_at"] == int(clock.now) + 60


async def test_someone_elses_session_is_403(api: httpx.AsyncClient, issuer: Issuer) -> None:
    session = await start(api, issuer, user="bob")
    answer = await ask(api, issuer, session)
    assert answer.status_code == 403
    assert "another user" in answer.json()["detail"]


async def test_an_unknown_session_is_404(api: httpx.AsyncClient, issuer: Issuer) -> None:
    answer = await ask(api, issuer, "0" * 32)
    assert answer.status_code == 404
    assert "GET /api/status lists your open sessions" in answer.json()["detail"]


async def test_a_released_session_is_409(api: httpx.AsyncClient, issuer: Issuer) -> None:
    session = await start(api, issuer)
    await api.delete(f"/api/sessions/{session}", headers=issuer.headers())
    answer = await ask(api, issuer, session)
    assert answer.status_code == 409
    assert "was released" in answer.json()["detail"]


async def test_a_session_that_ended_with_its_host_is_409(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session, _ = await ready_session(api, issuer, aws, clock)
    clock.advance(301)
    assert (await status(api, issuer))["phase"] == "stopped"

    answer = await ask(api, issuer, session)

    assert answer.status_code == 409
    assert "ended when its GPU host stopped" in answer.json()["detail"]


@pytest.mark.parametrize("overrides", [{"ticket_secret": None}, {"ws_base_url": ""}])
async def test_without_a_ticket_secret_or_socket_url_the_route_is_503(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session, _ = await ready_session(api, issuer, aws, clock)
    answer = await ask(api, issuer, session)
    assert answer.status_code == 503
    assert "SPINUP_TICKET_SECRET and SPINUP_WS_BASE_URL" in answer.json()["detail"]


def test_the_lambda_reads_the_ticket_secret_from_secrets_manager(
    lambda_environment: dict[str, str],
    aws: Aws,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given only the secret's ARN in the Lambda's environment (as the CDK app passes it),
    when API Gateway asks for a ticket, then it is signed with the secret's value."""
    value = "a-ticket-secret-from-secrets-manager-0123456789"
    arn = aws.client("secretsmanager").create_secret(Name="tickets", SecretString=value)["ARN"]
    monkeypatch.setenv("SPINUP_TICKET_SECRET_ARN", arn)
    monkeypatch.delenv("SPINUP_TICKET_SECRET", raising=False)
    claims = {"sub": "erin"}

    def call(method: str, path: str) -> dict[str, Any]:
        answer = lambda_handler.handler(http_api_event(method, path, claims), CONTEXT)
        assert answer["statusCode"] in (200, 202), answer["body"]
        body: dict[str, Any] = json.loads(answer["body"])
        return body

    session = call("POST", "/api/sessions")["session_id"]
    call("GET", "/api/status")
    call("GET", "/api/status")
    (host,) = aws.in_service()
    aws.report_ready(host, time.time())  # the Lambda's clock is the real one
    assert call("GET", "/api/status")["phase"] == "ready"
    body = call("POST", f"/api/sessions/{session}/ticket")

    assert body["ws_url"] == f"{WS_BASE_URL}/{host}/inference"
    assert verified(body, body["expires_at"] - 1, host, secret=value).user == "erin"
