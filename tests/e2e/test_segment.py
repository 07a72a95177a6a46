"""A person picks Segment, presses Start and sees their silhouette tinted on the camera image."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, WebSocket, expect

from tests.e2e.conftest import (
    READY_TIMEOUT_MS,
    RESULTS_TIMEOUT_MS,
    STOP_TIMEOUT_MS,
    LocalSystem,
    choose_models,
    through,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.triton]


def test_a_person_photo_gets_a_mask_drawn(
    local_system: LocalSystem,
    browser_with_camera: Callable[[Path], Browser],
    person_camera: Path,
    artifacts_dir: Path,
) -> None:
    """
    Given a camera showing a photograph of a person,
    When a person selects Segment only and presses Start,
    Then the results carry a whole-frame `person` mask from `segment` whose run lengths
    cover its cells, and the engine draws it on the camera image.
    """
    page = browser_with_camera(person_camera).new_page()
    results: list[dict[str, Any]] = []

    def watch(ws: WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            if isinstance(payload, str):
                message = json.loads(payload)
                if message["type"] == "result":
                    results.append(message)

        ws.on("framereceived", on_frame)

    page.on("websocket", watch)
    page.goto(local_system.url)
    status = page.locator("#status")
    expect(status).to_have_attribute("data-phase", "stopped", timeout=STOP_TIMEOUT_MS)
    choose_models(page, ("segment",))
    page.locator("#start").click()
    expect(status).to_have_attribute("data-phase", "ready", timeout=READY_TIMEOUT_MS)

    masks = eventually(
        lambda: [m for r in results for m in r.get("masks", [])],
        bool,
        what="a result with a mask",
        timeout_s=RESULTS_TIMEOUT_MS / 1000,
        interval_s=0.25,
        pause=through(page),
    )
    mask = masks[0]
    assert (mask["model"], mask["label"], mask["box"]) == ("segment", "person", [0, 0, 1, 1])
    width, height = mask["size"]
    assert sum(mask["rle"]) == width * height
    inside = sum(mask["rle"][1::2])
    # Grace Hopper fills the left half of the frame: a real silhouette, not all or nothing.
    assert 0.15 * width * height < inside < 0.75 * width * height, mask

    page.wait_for_function(
        "() => Number(document.querySelector('#stats').dataset.masks || 0) >= 1",
        timeout=RESULTS_TIMEOUT_MS,
    )
    page.screenshot(path=str(artifacts_dir / "e2e-segment.png"))

    page.locator("#stop").click()
    expect(status).to_have_attribute("data-phase", "stopped", timeout=STOP_TIMEOUT_MS)
