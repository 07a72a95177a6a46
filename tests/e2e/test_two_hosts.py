"""Two users, two GPU hosts: the fleet as people see it, in two browser pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    RESULTS_TIMEOUT_MS,
    LocalSystem,
    choose_models,
    host_processes,
    running_local_system,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.triton]

IDLE_S = 15
READY_TIMEOUT_MS = 180_000
STOP_TIMEOUT_S = 180.0
USERS = ("ann", "bob")


@pytest.fixture(scope="module")
def two_host_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    """At most two hosts, one session each: the second user's Start needs a second host."""
    with running_local_system(
        tmp_path_factory.mktemp("fleet-run"),
        SPINUP_LOCAL_MAX_HOSTS="2",
        SPINUP_SESSIONS_PER_HOST="1",
        SPINUP_IDLE_AFTER_DISCONNECT_S=str(IDLE_S),
        SPINUP_IDLE_WHILE_CONNECTED_S=str(IDLE_S),
        SPINUP_LOCAL_SERVED_MODELS="text",
    ) as system:
        yield system


def api_status(system: LocalSystem, user: str) -> dict[str, object]:
    token = httpx.get(system.url + "config.json", params={"user": user}).json()["devToken"]
    response = httpx.get(system.url + "api/status", headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


def host_of(status: dict[str, object]) -> str:
    sessions = status["sessions"]
    assert isinstance(sessions, list)
    assert len(sessions) == 1, sessions
    host_id = sessions[0]["host_id"]
    assert isinstance(host_id, str)
    return host_id


def test_two_users_on_two_hosts_both_see_boxes_and_both_hosts_stop_idle(
    two_host_system: LocalSystem,
    browser_with_camera: Callable[[Path], Browser],
    text_camera: Path,
) -> None:
    """
    Given the local fleet with at most two hosts of one session each,
    When two users (two pages, `?user=ann` and `?user=bob`) press Start,
    Then each reaches ready on a host of their own and sees boxes drawn,
    And when both close their pages, each host leaves on its own idle timeout.
    """
    browser = browser_with_camera(text_camera)
    pages: dict[str, Page] = {}
    for user in USERS:
        page = browser.new_context().new_page()
        page.goto(f"{two_host_system.url}?user={user}")
        choose_models(page, ("text",))
        expect(page.locator("#status")).to_have_attribute("data-phase", "stopped")
        page.locator("#start").click()
        pages[user] = page

    for page in pages.values():
        expect(page.locator("#status")).to_have_attribute(
            "data-phase", "ready", timeout=READY_TIMEOUT_MS
        )
        page.wait_for_function(
            "() => Number(document.querySelector('#stats').dataset.boxes || 0) >= 1",
            timeout=RESULTS_TIMEOUT_MS,
        )
    hosts = {user: host_of(api_status(two_host_system, user)) for user in USERS}
    assert len(set(hosts.values())) == 2, hosts

    for page in pages.values():
        page.context.close()
    for user in USERS:
        ended = eventually(
            lambda user=user: api_status(two_host_system, user),  # type: ignore[misc]
            lambda now: now["phase"] == "stopped" and "idle" in str(now["message"]).lower(),
            what=f"{user}'s host leaves idle",
            timeout_s=STOP_TIMEOUT_S,
            interval_s=1,
        )
        assert ended["sessions"] == []
    eventually(
        lambda: host_processes(two_host_system),
        lambda processes: processes == [],
        what="both hosts' Triton and backends exit",
        timeout_s=60,
        interval_s=0.5,
    )
