"""bench.pipeline runs the backend's per-frame path on canned model answers: every frame makes
its requests, and the figures come out per repeat."""

from __future__ import annotations

import pytest

from bench.pipeline import Figures, measure, report


@pytest.mark.parametrize(("models", "requests_per_frame"), [(["face"], 1), (["face", "pose"], 2)])
def test_every_frame_goes_through_the_pipeline_with_its_requests(
    models: list[str], requests_per_frame: int
) -> None:
    figures = measure(models, frames=3, repeats=2)
    assert figures.models == ",".join(models)
    assert len(figures.pipeline_ms) == len(figures.direct_ms) == 2
    assert all(ms > 0 for ms in (*figures.pipeline_ms, *figures.direct_ms))
    assert figures.requests == 3 * 2 * requests_per_frame


def test_the_report_line_gives_the_minimum_median_and_ratio() -> None:
    figures = Figures("face", pipeline_ms=(0.6, 0.5, 0.9), direct_ms=(0.3, 0.25, 0.4), requests=3)
    line = report(figures)
    assert line.startswith("face")
    assert "pipeline  0.500 ms/frame (median 0.600)" in line
    assert "direct  0.250 ms/frame" in line
    assert line.endswith("pipeline / direct 2.00")
