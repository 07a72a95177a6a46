"""A person opens the UI, presses Start, sees boxes on the camera image, presses Stop."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, WebSocket, expect

from lambdas.domain.stop_rules import REPORT_LAG_S
from tests.e2e.conftest import (
    PRINTED_WORD,
    READY_TIMEOUT_MS,
    RESULTS_TIMEOUT_MS,
    STOP_TIMEOUT_MS,
    LocalSystem,
    choose_models,
    host_processes,
    through,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.triton]


def test_start_stream_stop(
    local_system: LocalSystem,
    browser_with_camera: Callable[[Path], Browser],
    text_camera: Path,
    artifacts_dir: Path,
) -> None:
    """
    Given the local system with the GPU instance stopped and a camera showing printed words,
    When a person presses Start,
    Then the phase reaches ready, results stream back with text boxes drawn over the video,
    And when they press Stop, the phase reaches stopped and Triton and the backend are gone.
    """
    page = browser_with_camera(text_camera).new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(local_system.url)
    choose_models(page, ("text",))
    expect(page.locator("#read-text")).to_be_hidden()  # no text-reading model chosen

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
    # The user's own phase is `stopped` at once (they hold no session); the host leaves once
    # frames may have stopped (REPORT_LAG_S after the last one reported) plus the grace.
    eventually(
        lambda: host_processes(local_system),
        lambda processes: processes == [],
        what="Triton and the backend exit",
        timeout_s=REPORT_LAG_S + 30,
        interval_s=0.25,
        pause=through(page),
    )
    assert not [e for e in console_errors if "favicon" not in e], console_errors


def test_person_and_printed_word_through_the_browser(
    local_system: LocalSystem,
    browser_with_camera: Callable[[Path], Browser],
    person_camera: Path,
    artifacts_dir: Path,
) -> None:
    """
    Given a camera showing a photograph of a person beside a printed word,
    When a person selects objects, pose, faces and text reading and presses Start,
    Then the results the browser receives carry a `person` box, 17 keypoints, a face box
    and the word read, and the engine draws boxes;
    And "Read text" sends the protocol's read_text request, which the server accepts.
    """
    page = browser_with_camera(person_camera).new_page()
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []

    def watch(ws: WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            if isinstance(payload, str):
                message = json.loads(payload)
                {"result": results, "error": errors}.get(message["type"], []).append(message)

        def on_sent(payload: str | bytes) -> None:
            if isinstance(payload, str):
                requests.append(json.loads(payload))

        ws.on("framereceived", on_frame)
        ws.on("framesent", on_sent)

    page.on("websocket", watch)
    page.goto(local_system.url)
    status = page.locator("#status")
    expect(status).to_have_attribute("data-phase", "stopped", timeout=STOP_TIMEOUT_MS)
    choose_models(page, ("detect", "pose", "face", "ocr"))
    page.locator("#start").click()
    expect(status).to_have_attribute("data-phase", "ready", timeout=READY_TIMEOUT_MS)

    def seen() -> dict[str, bool]:
        return {
            "person": any(
                d["model"] == "detect" and d["label"] == "person"
                for r in results
                for d in r["detections"]
            ),
            "face": any(d["model"] == "face" for r in results for d in r["detections"]),
            "keypoints": any(
                k["model"] == "pose" and len(k["points"]) == 17
                for r in results
                for k in r["keypoints"]
            ),
            "word": any(t["text"] == PRINTED_WORD for r in results for t in r["texts"]),
        }

    eventually(
        seen,
        lambda models: all(models.values()),
        what="a result from every model",
        timeout_s=RESULTS_TIMEOUT_MS / 1000,
        interval_s=0.25,
        pause=through(page),
    )
    page.wait_for_function(
        "() => Number(document.querySelector('#stats').dataset.boxes || 0) >= 2",
        timeout=RESULTS_TIMEOUT_MS,
    )
    page.screenshot(path=str(artifacts_dir / "e2e-person.png"))

    page.locator("#read-text").click()
    eventually(
        lambda: requests,
        lambda sent: {"type": "read_text"} in sent,
        what="the read_text request",
        timeout_s=10,
        interval_s=0.1,
        pause=through(page),
    )
    answered = len(results)
    eventually(
        lambda: len(results),
        lambda count: count >= answered + 3,
        what="results after read_text",
        timeout_s=30,
        interval_s=0.1,
        pause=through(page),
    )
    assert not [e for e in errors if e["code"] == "bad_message"], errors

    page.locator("#stop").click()
    expect(status).to_have_attribute("data-phase", "stopped", timeout=STOP_TIMEOUT_MS)
