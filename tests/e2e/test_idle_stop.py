"""The idle stop as a person sees it: the countdown, Keep running, and the GPU stopping itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import LocalSystem, choose_models, running_local_system
from tests.support.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.triton]

IDLE_S = 20
STOP_TIMEOUT_S = 150.0


@pytest.fixture(scope="module")
def quick_idle_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    with running_local_system(
        tmp_path_factory.mktemp("idle-run"),
        SPINUP_IDLE_AFTER_DISCONNECT_S=str(IDLE_S),
        SPINUP_IDLE_WHILE_CONNECTED_S=str(IDLE_S),
        SPINUP_LOCAL_SERVED_MODELS="text",
    ) as system:
        yield system


def status(system: LocalSystem) -> dict[str, object]:
    token = httpx.get(system.url + "config.json").json()["devToken"]
    response = httpx.get(system.url + "api/status", headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


def test_countdown_keep_running_then_idle_stop(
    quick_idle_system: LocalSystem,
    browser_with_camera: Callable[[Path], Browser],
    text_camera: Path,
) -> None:
    """
    Given idle timeouts of 20 s,
    When a person starts the GPU and streams, the UI shows the idle countdown with Keep running;
    When they press Keep running, the control plane accepts it (200) and the stop is at least
    one idle timeout away;
    When they close the tab, the GPU stops by itself and the status says it was idle.
    """
    page = browser_with_camera(text_camera).new_page()
    page.goto(quick_idle_system.url)
    choose_models(page, ("text",))
    page.locator("#start").click()
    expect(page.locator("#status")).to_have_attribute("data-phase", "ready", timeout=120_000)

    expect(page.locator("#idle")).to_be_visible(timeout=60_000)
    expect(page.locator("#idle-text")).to_contain_text("the GPU stops in")
    clicked_at = time.time()
    with page.expect_response(lambda r: r.url.endswith("/keepalive") and r.ok):
        page.locator("#keepalive").click()
    stop_at = status(quick_idle_system)["stop_at"]
    assert isinstance(stop_at, float | int)
    # A keepalive counts as use: the stop is now at least one idle timeout away.
    assert stop_at >= clicked_at + IDLE_S - 1

    page.close()  # the person leaves: the socket closes and no frame comes any more
    now = eventually(
        lambda: status(quick_idle_system),
        lambda body: body["phase"] == "stopped",
        what="the idle GPU stops by itself",
        timeout_s=STOP_TIMEOUT_S,
        interval_s=1,
    )
    assert "idle" in str(now["message"]).lower(), now
