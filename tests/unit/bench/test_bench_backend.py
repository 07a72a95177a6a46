"""bench.backend's verdict against issue 10's goals (the figures themselves need the system)."""

from __future__ import annotations

import pytest

from bench.backend import against_goal


@pytest.mark.parametrize(
    ("models", "ms", "verdict"),
    [
        ("face", 1.5, "goal <= 1.5 ms/result: met (1.00× the goal)"),
        ("face", 1.8, "goal <= 1.5 ms/result: NOT met (1.20× the goal)"),
        ("detect,pose,face", 4.0, "goal <= 5.0 ms/result: met (0.80× the goal)"),
    ],
)
def test_a_model_set_with_a_goal_is_judged_against_it(models: str, ms: float, verdict: str) -> None:
    line = against_goal(models, ms)
    assert line.startswith(verdict)
    assert "issue 10 quoted" in line


def test_a_set_without_a_goal_shows_the_quoted_figure_only() -> None:
    assert against_goal("text", 4.0) == "issue 10 quoted 3.8 ms/result before"


def test_an_unknown_set_gets_no_line() -> None:
    assert against_goal("pose", 1.0) == ""
