"""`POST /api/sessions/{id}/ticket` against moto: a single-use socket ticket for the session's
owner, bound to the session and its host; refused for others' and ended sessions."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from lambdas.aws.clients import Clients
from lambdas.control import lambda_handler
from lambdas.control.app import create_app
from lambdas.domain.tickets import TicketClaims, read_ticket
from lambdas.settings import Settings
from tests.integration.control.harness import TICKET_SECRET, Aws, Clock, Issuer
from tests.integration.control.test_api_auth import CONTEXT, http_api_event

pytestmark = pytest.mark.timeout(60)


async def start(api: httpx.AsyncClient, issuer: Issuer, user: str = "alice") -> str:
    response = await api.post("/api/sessions", headers=issuer.headers(user))
    assert response.status_code == 202, response.text
    session_id: str = response.json()["session_id"]
    return session_id


async def ask(
    api: httpx.AsyncClient, issuer: Issuer, session_id: str, user: str = "alice"
) -> httpx.Response:
    return await api.post(f"/api/sessions/{session_id}/ticket", headers=issuer.headers(user))


def verified(body: dict[str, Any], now: float, secret: str = TICKET_SECRET) -> TicketClaims:
    return read_ticket(body["ticket"], secret=secret, host_id="gpu-0", now=now)


async def test_the_owner_gets_a_ticket_for_the_session_and_its_host(
    api: httpx.AsyncClient, issuer: Issuer, clock: Clock
) -> None:
    session = await start(api, issuer)

    answer = await ask(api, issuer, session)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"ticket", "ws_url", "expires_at"}
    assert body["ws_url"] == "wss://spinup.test/ws/inference"
    assert body["expires_at"] == int(clock.now) + 30
    claims = verified(body, clock.now)
    assert (claims.user, claims.session_id, claims.host_id) == ("alice", session, "gpu-0")


async def test_every_connection_gets_a_fresh_ticket(
    api: httpx.AsyncClient, issuer: Issuer, clock: Clock
) -> None:
    session = await start(api, issuer)
    first, second = [(await ask(api, issuer, session)).json() for _ in range(2)]
    assert first["ticket"] != second["ticket"]
    assert verified(first, clock.now).ticket_id != verified(second, clock.now).ticket_id


async def test_asking_for_a_ticket_is_not_activity(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws
) -> None:
    session = await start(api, issuer)
    generation = aws.host().generation
    assert (await ask(api, issuer, session)).status_code == 200
    assert aws.host().generation == generation


async def test_the_ttl_setting_sets_the_expiry(
    settings: Settings, clients: Clients, clock: Clock, issuer: Issuer
) -> None:
    app = create_app(settings.model_copy(update={"ticket_ttl_s": 60}), clients=clients, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://spinup.test"
    ) as api:
        body = (await ask(api, issuer, await start(api, issuer))).json()
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


async def test_a_session_that_ended_with_the_run_is_409(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session = await start(api, issuer)
    aws.update_host("SET ready_at = :t", t=clock.advance(120))
    clock.advance(301)
    status = await api.get("/api/status", headers=issuer.headers())
    assert status.json()["phase"] == "stopped"

    answer = await ask(api, issuer, session)

    assert answer.status_code == 409
    assert "ended when the instance stopped" in answer.json()["detail"]


async def test_without_a_ticket_secret_the_route_is_503(
    settings: Settings, clients: Clients, clock: Clock, issuer: Issuer
) -> None:
    app = create_app(
        settings.model_copy(update={"ticket_secret": None}), clients=clients, clock=clock
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://spinup.test"
    ) as api:
        answer = await ask(api, issuer, await start(api, issuer))
    assert answer.status_code == 503
    assert "SPINUP_TICKET_SECRET" in answer.json()["detail"]


def test_the_lambda_reads_the_ticket_secret_from_secrets_manager(
    settings: Settings, clients: Clients, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given only the secret's ARN in the Lambda's environment (as the CDK app passes it),
    when API Gateway asks for a ticket, then it is signed with the secret's value."""
    value = "a-ticket-secret-from-secrets-manager-0123456789"
    arn = aws.client("secretsmanager").create_secret(Name="tickets", SecretString=value)["ARN"]
    for name, setting in {
        "SPINUP_TABLE_NAME": settings.table_name,
        "SPINUP_INSTANCE_ID": settings.instance_id,
        "SPINUP_AWS_ENDPOINT_URL": aws.endpoint,
        "SPINUP_AUTH_MODE": "apigw",
        "SPINUP_WS_URL": "wss://spinup.test/ws/inference",
        "SPINUP_TICKET_SECRET_ARN": arn,
    }.items():
        monkeypatch.setenv(name, setting)
    monkeypatch.delenv("SPINUP_TICKET_SECRET", raising=False)
    lambda_handler._adapter.cache_clear()
    try:
        claims = {"sub": "erin"}
        opened = lambda_handler.handler(http_api_event("POST", "/api/sessions", claims), CONTEXT)
        session = json.loads(opened["body"])["session_id"]
        answer = lambda_handler.handler(
            http_api_event("POST", f"/api/sessions/{session}/ticket", claims), CONTEXT
        )
    finally:
        lambda_handler._adapter.cache_clear()
    assert answer["statusCode"] == 200, answer["body"]
    body = json.loads(answer["body"])
    assert verified(body, body["expires_at"] - 1, secret=value).user == "erin"
