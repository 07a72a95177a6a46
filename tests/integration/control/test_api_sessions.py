"""The control API's session routes against moto: start (a host launched through the group),
limits and the budget across the fleet, keepalive, release, errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lambdas.domain.host_record import heartbeat_update
from tests.integration.control.harness import (
    Aws,
    Clock,
    Issuer,
    RecordingFleet,
    host_of,
    ready_session,
    start,
    status,
)

pytestmark = pytest.mark.timeout(60)


async def test_a_start_on_an_empty_fleet_launches_a_host_and_places_the_session(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, fleet: RecordingFleet
) -> None:
    before = await status(api, issuer)
    assert (before["phase"], before["instance_state"], before["sessions"]) == (
        "stopped",
        "none",
        [],
    )

    created = await api.post("/api/sessions", headers=issuer.headers())

    assert created.status_code == 202
    body = created.json()
    assert body["phase"] == "starting"
    assert body["status_url"] == "/api/status"
    assert len(body["session_id"]) == 32
    assert fleet.capacity_calls() == [1]
    (host,) = aws.in_service()
    opened = await status(api, issuer)  # the host's run opens; the next reconcile places
    assert (opened["phase"], opened["sessions"][0]["host_id"]) == ("starting", None)
    after = await status(api, issuer)
    assert after["phase"] == "booting"
    assert after["ws_url"] is None
    assert [(s["session_id"], s["host_id"]) for s in after["sessions"]] == [
        (body["session_id"], host)
    ]
    assert aws.host(host).run_open


@pytest.mark.parametrize("overrides", [{"sessions_per_host": 1}])
async def test_a_user_may_hold_only_so_many_sessions_across_the_fleet(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws
) -> None:
    """Given one session per host, alice's two sessions are on two hosts; the limit counts
    them both."""
    first = await start(api, issuer)
    second = await start(api, issuer)
    await status(api, issuer)
    await status(api, issuer)
    assert {host_of(aws, "alice", first), host_of(aws, "alice", second)} == set(aws.in_service())

    refused = await api.post("/api/sessions", headers=issuer.headers())

    assert refused.status_code == 429
    detail = refused.json()["detail"]
    assert "2 open sessions" in detail
    assert first in detail
    assert second in detail
    assert "DELETE /api/sessions/" in detail
    await start(api, issuer, user="bob")


async def test_concurrent_starts_by_one_user_respect_the_limit(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws
) -> None:
    answers = await asyncio.gather(
        *(api.post("/api/sessions", headers=issuer.headers()) for _ in range(10))
    )
    assert sorted(a.status_code for a in answers) == [202, 202] + [429] * 8
    assert len(aws.fleet().sessions_of("alice")) == 2


async def test_over_the_daily_budget_start_answers_429_with_the_reason(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, fleet: RecordingFleet
) -> None:
    aws.update_fleet("SET budget_day = :day, budget_used_s = :used", day="2027-01-15", used=43200)

    refused = await api.post("/api/sessions", headers=issuer.headers())

    assert refused.status_code == 429
    assert "daily GPU budget of 12 h is used up" in refused.json()["detail"]
    assert fleet.capacity_calls() == []
    assert aws.in_service() == []


@pytest.mark.parametrize("overrides", [{"sessions_per_host": 1, "daily_gpu_hours": 1}])
async def test_two_hosts_use_the_fleets_budget_together(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    """Given a budget of 1 GPU-hour and two users streaming on two hosts, then both hosts
    stop after half an hour, and a new start is refused with the reason."""
    hosts = [(await ready_session(api, issuer, aws, clock, user))[1] for user in ("alice", "bob")]
    started = clock.now - 120
    while aws.in_service() and clock.now < started + 3600:
        clock.advance(60)
        for host in hosts:
            aws.report(host, heartbeat_update(clock.now, sessions=1))
        await status(api, issuer)

    assert aws.in_service() == []
    assert clock.now == pytest.approx(started + 1800, abs=60)
    assert [aws.host(h).stop_reason for h in hosts] == ["budget", "budget"]
    assert aws.fleet().budget_used_s == pytest.approx(3600, abs=120)
    refused = await api.post("/api/sessions", headers=issuer.headers("carol"))
    assert refused.status_code == 429
    detail = refused.json()["detail"]
    assert "daily GPU budget of 1 h is used up" in detail
    assert "across the fleet" in detail


async def test_keepalive_moves_stop_at(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session, _ = await ready_session(api, issuer, aws, clock)
    clock.advance(200)
    before = (await status(api, issuer))["stop_at"]
    assert before == pytest.approx(clock.now - 200 + 300)

    kept = await api.post(f"/api/sessions/{session}/keepalive", headers=issuer.headers())

    assert kept.status_code == 200
    assert kept.json()["phase"] == "ready"
    assert kept.json()["stop_at"] == pytest.approx(clock.now + 300)
    assert (await status(api, issuer))["stop_at"] > before


async def test_status_polling_alone_does_not_keep_the_host_up(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    """Given a ready host nobody sends frames to, when the page polls the status every 10 s,
    then the polls change nothing and the host leaves at the idle timeout."""
    _, host = await ready_session(api, issuer, aws, clock)
    ready_at = clock.now
    generation = aws.host(host).generation
    while clock.now + 10 < ready_at + 300:
        clock.advance(10)
        assert (await status(api, issuer))["phase"] == "ready"
    assert aws.host(host).generation == generation

    clock.advance(10)
    after = await status(api, issuer)

    assert after["phase"] == "stopped"
    assert aws.in_service() == []
    assert "no frames for 300 s" in aws.host(host).message


async def test_frames_keep_the_host_up(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    _, host = await ready_session(api, issuer, aws, clock)
    for _ in range(30):
        clock.advance(30)
        aws.report(host, heartbeat_update(clock.now, sessions=1))
        assert (await status(api, issuer))["phase"] == "ready"
    assert aws.in_service() == [host]


async def test_releasing_one_of_two_sessions_keeps_the_host_running(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    mine, host = await ready_session(api, issuer, aws, clock)
    theirs = await start(api, issuer, user="bob")
    assert host_of(aws, "bob", theirs) == host

    await api.delete(f"/api/sessions/{mine}", headers=issuer.headers())
    clock.advance(120)

    assert (await status(api, issuer, "bob"))["phase"] == "ready"
    assert aws.in_service() == [host]


async def test_release_is_idempotent(api: httpx.AsyncClient, issuer: Issuer) -> None:
    session = await start(api, issuer)
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
    session = await start(api, issuer, user="bob")
    answer = await api.request(method, f"/api/sessions/{session}{suffix}", headers=issuer.headers())
    assert answer.status_code == 403
    assert "another user" in answer.json()["detail"]


async def test_keepalive_on_an_ended_session_is_409(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock
) -> None:
    session, _ = await ready_session(api, issuer, aws, clock)
    clock.advance(301)
    assert (await status(api, issuer))["phase"] == "stopped"

    answer = await api.post(f"/api/sessions/{session}/keepalive", headers=issuer.headers())

    assert answer.status_code == 409
    assert "ended when its GPU host stopped" in answer.json()["detail"]


async def test_keepalive_on_a_released_session_is_409(
    api: httpx.AsyncClient, issuer: Issuer
) -> None:
    session = await start(api, issuer)
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
    answer = await api.delete("/api/sessions/..%2F..%2Fhost%23i-0123", headers=issuer.headers())
    assert answer.status_code in (404, 422)
    answer = await api.delete(f"/api/sessions/{'x' * 5000}", headers=issuer.headers())
    assert answer.status_code == 422
    assert "session_id" in answer.json()["detail"]


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
