"""The control API's session routes against moto: start, limits, keepalive, release."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from lambdas.domain.host_record import Milestone, heartbeat_update, milestone_update
from tests.integration.control.harness import Aws, Clock, Issuer

pytestmark = pytest.mark.timeout(60)


async def start(api: httpx.AsyncClient, issuer: Issuer, user: str = "alice") -> dict[str, Any]:
    response = await api.post("/api/sessions", headers=issuer.headers(user))
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def status(api: httpx.AsyncClient, issuer: Issuer, user: str = "alice") -> dict[str, Any]:
    response = await api.get("/api/status", headers=issuer.headers(user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_start_from_stopped_runs_the_instance(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, start_calls: list[dict[str, Any]]
) -> None:
    before = await status(api, issuer)
    assert (before["phase"], before["instance_state"]) == ("stopped", "stopped")

    created = await api.post("/api/sessions", headers=issuer.headers())

    assert created.status_code == 202
    body = created.json()
    assert body["phase"] == "booting"
    assert body["status_url"] == "/api/status"
    assert len(body["session_id"]) == 32
    assert aws.ec2_state() == "running"
    assert len(start_calls) == 1
    after = await status(api, issuer)
    assert after["phase"] == "booting"
    assert after["ws_url"] == "wss://spinup.test/ws/inference"
    assert [s["session_id"] for s in after["sessions"]] == [body["session_id"]]


async def test_fifty_concurrent_starts_make_one_start_instances(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, start_calls: list[dict[str, Any]]
) -> None:
    """Given a stopped instance, when fifty users press Start at once (each request handled
    in its own worker thread), then every request is accepted and EC2 gets one start."""
    answers = await asyncio.gather(
        *(api.post("/api/sessions", headers=issuer.headers(f"user-{n}")) for n in range(50))
    )
    assert [a.status_code for a in answers] == [202] * 50
    assert len(start_calls) == 1
    assert aws.ec2_state() == "running"
    assert aws.host().open_session_count == 50


async def test_a_user_may_hold_only_so_many_sessions(
    api: httpx.AsyncClient, issuer: Issuer
) -> None:
    first = await start(api, issuer)
    second = await start(api, issuer)

    refused = await api.post("/api/sessions", headers=issuer.headers())

    assert refused.status_code == 429
    detail = refused.json()["detail"]
    assert "2 open sessions" in detail
    assert first["session_id"] in detail
    assert second["session_id"] in detail
    assert "DELETE /api/sessions/" in detail
    await start(api, issuer, user="bob")


async def test_concurrent_starts_by_one_user_respect_the_limit(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws
) -> None:
    answers = await asyncio.gather(
        *(api.post("/api/sessions", headers=issuer.headers()) for _ in range(10))
    )
    assert sorted(a.status_code for a in answers) == [202, 202] + [429] * 8
    assert len(aws.host().sessions_of("alice")) == 2


async def test_over_the_daily_budget_start_answers_429_with_the_reason(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clients: Any
) -> None:
    aws.update_host("SET budget_day = :day, budget_used_s = :used", day="2027-01-15", used=43200)

    refused = await api.post("/api/sessions", headers=issuer.headers())

    assert refused.status_code == 429
    assert "daily GPU budget of 12 h is used up" in refused.json()["detail"]
    assert aws.ec2_state() == "stopped"


async def test_keepalive_moves_stop_at(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session = (await start(api, issuer))["session_id"]
    aws.report(milestone_update(Milestone.READY, clock.advance(120)))
    clock.advance(200)
    before = (await status(api, issuer))["stop_at"]
    assert before == pytest.approx(clock.now - 200 + 300)

    kept = await api.post(f"/api/sessions/{session}/keepalive", headers=issuer.headers())

    assert kept.status_code == 200
    assert kept.json()["phase"] == "ready"
    assert kept.json()["stop_at"] == pytest.approx(clock.now + 300)
    assert (await status(api, issuer))["stop_at"] > before


async def test_status_polling_alone_does_not_keep_the_instance_up(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    """Given a ready instance nobody sends frames to, when the page polls the status every
    10 s, then the polls change nothing and the instance stops at the idle timeout."""
    await start(api, issuer)
    ready_at = clock.advance(120)
    aws.report(milestone_update(Milestone.READY, ready_at))
    generation = aws.host().generation
    while clock.now + 10 < ready_at + 300:
        clock.advance(10)
        assert (await status(api, issuer))["phase"] == "ready"
    assert aws.host().generation == generation

    clock.advance(10)
    after = await status(api, issuer)

    assert after["phase"] == "stopped"
    assert aws.ec2_state() == "stopped"
    assert "no frames for 300 s" in after["message"]


async def test_frames_keep_the_instance_up(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    await start(api, issuer)
    aws.report(milestone_update(Milestone.READY, clock.advance(120)))
    for _ in range(30):
        clock.advance(30)
        aws.report(heartbeat_update(clock.now, sessions=1))
        assert (await status(api, issuer))["phase"] == "ready"


async def test_releasing_the_last_session_stops_after_the_grace(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session = (await start(api, issuer))["session_id"]
    aws.report(milestone_update(Milestone.READY, clock.advance(120)))
    clock.advance(30)

    released = await api.delete(f"/api/sessions/{session}", headers=issuer.headers())

    assert released.status_code == 200
    assert released.json() == {"session_id": session, "released": True, "phase": "ready"}
    clock.advance(59)
    assert (await status(api, issuer))["phase"] == "ready"
    clock.advance(1)
    after = await status(api, issuer)
    assert after["phase"] == "stopped"
    assert "Every session was released" in after["message"]
    assert aws.ec2_state() == "stopped"


async def test_releasing_one_of_two_sessions_keeps_it_running(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    mine = (await start(api, issuer))["session_id"]
    await start(api, issuer, user="bob")
    aws.report(milestone_update(Milestone.READY, clock.advance(120)))

    await api.delete(f"/api/sessions/{mine}", headers=issuer.headers())
    clock.advance(120)

    assert (await status(api, issuer))["phase"] == "ready"


async def test_release_is_idempotent(api: httpx.AsyncClient, issuer: Issuer) -> None:
    session = (await start(api, issuer))["session_id"]
    for _ in range(2):
        answer = await api.delete(f"/api/sessions/{session}", headers=issuer.headers())
        assert answer.status_code == 200
        assert answer.json()["released"] is True


@pytest.mark.parametrize(
    ("method", "suffix"), [("POST", "/keepalive"), ("DELETE", "")], ids=["keepalive", "release"]
)
async def test_an_unknown_session_is_404(
    method: str, suffix: str, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    answer = await api.request(
        method, f"/api/sessions/{'0' * 32}{suffix}", headers=issuer.headers()
    )
    assert answer.status_code == 404
    assert "GET /api/status lists your open sessions" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("method", "suffix"), [("POST", "/keepalive"), ("DELETE", "")], ids=["keepalive", "release"]
)
async def test_someone_elses_session_is_403(
    method: str, suffix: str, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    session = (await start(api, issuer, user="bob"))["session_id"]
    answer = await api.request(method, f"/api/sessions/{session}{suffix}", headers=issuer.headers())
    assert answer.status_code == 403
    assert "another user" in answer.json()["detail"]


async def test_keepalive_on_an_ended_session_is_409(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session = (await start(api, issuer))["session_id"]
    aws.report(milestone_update(Milestone.READY, clock.advance(120)))
    clock.advance(301)
    assert (await status(api, issuer))["phase"] == "stopped"

    answer = await api.post(f"/api/sessions/{session}/keepalive", headers=issuer.headers())

    assert answer.status_code == 409
    assert "ended when the instance stopped" in answer.json()["detail"]


async def test_keepalive_on_a_released_session_is_409(
    api: httpx.AsyncClient, issuer: Issuer
) -> None:
    session = (await start(api, issuer))["session_id"]
    await api.delete(f"/api/sessions/{session}", headers=issuer.headers())
    answer = await api.post(f"/api/sessions/{session}/keepalive", headers=issuer.headers())
    assert answer.status_code == 409
    assert "was released" in answer.json()["detail"]


@pytest.mark.parametrize(
    "content",
    [b'{"models": ["detect", "pose"]}', b"{not json", b"\xff"],
    ids=["an_earlier_engine_s_models", "not_json", "not_utf8"],
)
async def test_start_reads_no_body(content: bytes, api: httpx.AsyncClient, issuer: Issuer) -> None:
    """Start takes no body (a session's models are named in the WebSocket hello); a page
    cached from when it took `{"models": [...]}` still starts."""
    headers = {"content-type": "application/json", **issuer.headers()}
    answer = await api.post("/api/sessions", content=content, headers=headers)
    assert answer.status_code == 202, answer.text


async def test_a_malformed_session_id_is_422(api: httpx.AsyncClient, issuer: Issuer) -> None:
    answer = await api.delete("/api/sessions/..%2F..%2Fhost%23gpu-0", headers=issuer.headers())
    assert answer.status_code in (404, 422)
    answer = await api.delete(f"/api/sessions/{'x' * 5000}", headers=issuer.headers())
    assert answer.status_code == 422
    assert "session_id" in answer.json()["detail"]


async def test_a_missing_instance_is_an_error_phase_and_start_is_503(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws
) -> None:
    aws.client("ec2").terminate_instances(InstanceIds=[aws.instance_id])

    current = await status(api, issuer)
    refused = await api.post("/api/sessions", headers=issuer.headers())

    assert current["phase"] == "error"
    assert "terminated" in current["message"]
    assert "cdk deploy" in current["message"]
    assert refused.status_code == 503
    assert "cdk deploy" in refused.json()["detail"]


async def test_the_openapi_document_is_served(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/openapi.json")
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    assert set(paths) == {
        "/api/sessions",
        "/api/status",
        "/api/sessions/{session_id}/keepalive",
        "/api/sessions/{session_id}/ticket",
        "/api/sessions/{session_id}",
    }


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/api/nothing-here", 404, "There is no GET /api/nothing-here"),
        ("PUT", "/api/status", 405, "PUT /api/status is not allowed"),
    ],
)
async def test_framework_errors_say_what_to_do(
    method: str, path: str, status: int, words: str, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    answer = await api.request(method, path, headers=issuer.headers())
    assert answer.status_code == status
    assert words in answer.json()["detail"]
