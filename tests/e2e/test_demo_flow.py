"""A person opens the UI, presses Start, sees boxes on the camera image, presses Stop."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import LocalSystem, host_processes

pytestmark = [pytest.mark.browser, pytest.mark.triton]

READY_TIMEOUT_MS = 120_000
RESULTS_TIMEOUT_MS = 60_000
STOP_TIMEOUT_MS = 60_000


def _wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_start_stream_stop(
    local_system: LocalSystem, browser: Browser, artifacts_dir: Path
) -> None:
    """
    Given the local system with the GPU instance stopped and a camera showing printed words,
    When a person presses Start,
    Then the phase reaches ready, results stream back with text boxes drawn over the video,
    And when they press Stop, the phase reaches stopped and Triton and the backend are gone.
    """
    page = browser.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(local_system.url)

    status = page.locator("#status")
    expect(status).to_have_attribute("data-phase", "stopped", timeout=15_000)
    assert host_processes(local_system) == []

    started = time.monotonic()
    page.locator("#start").click()
    expect(status).to_have_attribute("data-phase", "ready", timeout=READY_TIMEOUT_MS)
    start_to_ready_s = time.monotonic() - started

    stats = page.locator("#stats")
    page.wait_for_function(
        "() => Number(document.querySelector('#stats').dataset.results || 0) >= 5",
        timeout=RESULTS_TIMEOUT_MS,
    )
    page.wait_for_function(
        "() => Number(document.querySelector('#stats').dataset.boxes || 0) >= 1",
        timeout=RESULTS_TIMEOUT_MS,
    )
    shot = artifacts_dir / "e2e-streaming.png"
    page.screenshot(path=str(shot))
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 10, "the screenshot is blank"
    print(f"start→ready {start_to_ready_s:.1f} s; stats: {stats.inner_text()}")  # noqa: T201

    page.locator("#stop").click()
    expect(status).to_have_attribute("data-phase", "stopped", timeout=STOP_TIMEOUT_MS)
    _wait_until(lambda: host_processes(local_system) == [], 30, "Triton and backend to exit")
    assert not [e for e in console_errors if "favicon" not in e], console_errors
