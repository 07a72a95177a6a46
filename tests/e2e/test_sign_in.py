"""Sign-in as a person does it with Cognito, against the local OIDC provider: the code flow
with PKCE, tokens renewed while the GPU streams (the socket stays up), and sign-out."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, Response, WebSocket, expect

from tests.e2e.conftest import (
    READY_TIMEOUT_MS,
    RESULTS_TIMEOUT_MS,
    LocalSystem,
    choose_models,
    running_local_system,
    through,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.triton]

TOKEN_TTL_S = 20
"""The provider's ID/access token lifetime: the page renews them every 16 s (80 %)."""
RENEWALS_WHILE_STREAMING = 2


@pytest.fixture(scope="module")
def code_flow_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    with running_local_system(
        tmp_path_factory.mktemp("sign-in-run"),
        SPINUP_LOCAL_SIGN_IN="code",
        SPINUP_LOCAL_TOKEN_TTL_S=str(TOKEN_TTL_S),
        SPINUP_LOCAL_SERVED_MODELS="text",
        SPINUP_RELEASE_GRACE_S="1",
    ) as system:
        yield system


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


@dataclass
class Traffic:
    """What the page sent and received, as Playwright reports it (frames included)."""

    api: list[tuple[float, str, int]] = field(default_factory=list)  # (sent at, token, status)
    token_grants: list[str] = field(default_factory=list)
    revocations: list[str] = field(default_factory=list)
    sockets_opened: int = 0
    sockets_closed: int = 0
    console_errors: list[str] = field(default_factory=list)
    _sent_at: dict[Request, float] = field(default_factory=dict)

    def watch(self, page: Page) -> None:
        page.on("request", self._request)
        page.on("response", self._response)
        page.on("websocket", self._websocket)
        page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )

    def _request(self, request: Request) -> None:
        self._sent_at[request] = time.time()
        form = parse_qs(request.post_data or "")
        if request.url.endswith("/local-oidc/token"):
            self.token_grants.append(form["grant_type"][0])
        elif request.url.endswith("/local-oidc/revoke"):
            self.revocations.append(form["token"][0])

    def _response(self, response: Response) -> None:
        request = response.request
        if "/api/" in request.url:
            token = (request.headers.get("authorization") or "").removeprefix("Bearer ")
            self.api.append((self._sent_at.pop(request, time.time()), token, response.status))

    def _websocket(self, ws: WebSocket) -> None:
        self.sockets_opened += 1

        def closed(_: WebSocket) -> None:
            self.sockets_closed += 1

        ws.on("close", closed)


def wait_until(page: Page, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """`eventually`, waiting through the page so that Playwright delivers its events."""
    eventually(predicate, what=what, timeout_s=timeout_s, interval_s=0.25, pause=through(page))


def stored_tokens(page: Page) -> dict[str, Any] | None:
    text = page.evaluate("() => sessionStorage.getItem('spinup.oidc.tokens')")
    return None if text is None else json.loads(text)


def test_code_flow_renewal_while_streaming_and_sign_out(
    code_flow_system: LocalSystem,
    browser_with_camera: Callable[[Path], Browser],
    text_camera: Path,
) -> None:
    """
    Given the local system signing in through its OIDC provider, with 20-second tokens,
    When a person presses Sign in, the provider sends them back with a code that the page
    redeems (PKCE) and removes from the address bar;
    When they start the GPU and stream, and the tokens are renewed twice (rotation),
    Then the API calls keep succeeding with fresh tokens after the first token expired, the
    engine's socket is never reopened and results keep coming;
    When they press Sign out, the refresh token is revoked: the provider refuses it.
    """
    system = code_flow_system
    page = browser_with_camera(text_camera).new_page()
    traffic = Traffic()
    traffic.watch(page)
    page.goto(system.url)

    expect(page.locator("#message")).to_have_text("Sign in required.")
    page.locator("#signin-button").click()
    status = page.locator("#status")
    expect(status).to_have_attribute("data-phase", "stopped", timeout=15_000)
    assert page.url == system.url, "the code (or a token) stayed in the address bar"
    assert traffic.token_grants == ["authorization_code"]
    assert page.evaluate("() => sessionStorage.getItem('spinup.oidc.pending')") is None
    expect(page.locator("#signout")).to_be_visible()

    choose_models(page, ("text",))
    page.locator("#start").click()
    expect(status).to_have_attribute("data-phase", "ready", timeout=READY_TIMEOUT_MS)
    page.wait_for_function(
        "() => Number(document.querySelector('#stats').dataset.results || 0) >= 3",
        timeout=RESULTS_TIMEOUT_MS,
    )
    assert traffic.sockets_opened == 1

    streaming_since = time.time()
    first = stored_tokens(page)
    assert first is not None
    first_exp = claims(first["idToken"])["exp"]
    results_then = int(page.locator("#stats").get_attribute("data-results") or 0)
    renewals_then = traffic.token_grants.count("refresh_token")
    wait_until(
        page,
        lambda: (
            traffic.token_grants.count("refresh_token") >= renewals_then + RENEWALS_WHILE_STREAMING
            and time.time() > first_exp + 2
        ),
        (RENEWALS_WHILE_STREAMING + 1) * TOKEN_TTL_S,
        f"{RENEWALS_WHILE_STREAMING} renewals and the first token's expiry",
    )
    # One more poll with the newest token, after the first one expired.
    wait_until(page, lambda: traffic.api[-1][0] > first_exp + 2, 10, "a status poll")

    latest = stored_tokens(page)
    assert latest is not None
    assert latest["refreshToken"] != first["refreshToken"], "the refresh token did not rotate"
    calls = [(at, token, code) for at, token, code in traffic.api if at >= streaming_since]
    assert calls
    assert all(code == 200 for _, _, code in calls), calls
    assert len({token for _, token, _ in calls}) >= 2, "the API saw one token only"
    for at, token, _ in calls:
        assert claims(token)["exp"] > at, "the page sent an expired token"
    assert any(at > first_exp for at, _, _ in calls)

    assert (traffic.sockets_opened, traffic.sockets_closed) == (1, 0), "the socket was reopened"
    expect(page.locator("#stream")).to_have_attribute("data-state", "streaming")
    results_now = int(page.locator("#stats").get_attribute("data-results") or 0)
    assert results_now > results_then

    held = stored_tokens(page)
    assert held is not None
    page.locator("#signout").click()
    expect(page.locator("#message")).to_have_text("Signed out.", timeout=15_000)
    assert traffic.revocations == [held["refreshToken"]]
    assert stored_tokens(page) is None
    expect(page.locator("#signin-button")).to_be_visible()
    refused = httpx.post(
        system.url + "local-oidc/token",
        data={
            "grant_type": "refresh_token",
            "client_id": claims(held["idToken"])["aud"],
            "refresh_token": held["refreshToken"],
        },
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    csp_errors = [e for e in traffic.console_errors if "Content Security Policy" in e]
    assert not csp_errors, csp_errors
