"""bench.backend's verdict against issue 10's goals and its summary of repeated runs (the
figures themselves need the system)."""

from __future__ import annotations

import pytest

from bench.backend import RunFigures, against_goal, summary


def run(models: str, cpu_s: float, *, sessions: int = 4, results: int = 1000) -> RunFigures:
    """A run whose backend used `cpu_s` over `results` results (two processes sharing it)."""
    return RunFigures(
        models=models,
        sessions=sessions,
        results=results,
        wall_s=5.0,
        cpu_s={101: cpu_s / 4, 102: cpu_s * 3 / 4},
        rtts_ms=[10.0] * results,
        mean_batch={m: 1.5 for m in models.split(",")},
    )


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


def test_the_summary_judges_the_median_of_the_repeats_not_the_best_run() -> None:
    # Given three runs of face at 1.2, 1.9 and 1.6 ms a result (the best one under the goal)
    runs = [run("face", 1.2), run("face", 1.9), run("face", 1.6)]
    # When they are summarized
    head, verdict = summary(runs)
    # Then the median (1.6) is what is judged, with the range beside it
    assert "median   1.60 ms/result over 3 runs (min 1.20, max 1.90)" in head
    assert head.startswith("face")
    assert "4 sessions" in head
    assert verdict.strip().startswith("goal <= 1.5 ms/result: NOT met (1.07× the goal)")


def test_an_even_number_of_repeats_takes_the_mean_of_the_middle_two() -> None:
    head, verdict = summary([run("detect,pose,face", x) for x in (4.0, 5.4, 4.6, 4.2)])
    assert "median   4.40 ms/result over 4 runs (min 4.00, max 5.40)" in head
    assert "met (0.88× the goal)" in verdict


def test_a_set_without_goal_or_quoted_figure_is_summarized_in_one_line() -> None:
    assert len(summary([run("pose", 1.0), run("pose", 2.0)])) == 1


@pytest.mark.parametrize(
    ("runs", "error"),
    [
        pytest.param([], "no runs to summarize", id="no runs"),
        pytest.param(
            [run("face", 1.0), run("text", 1.0)], "one model set and session", id="two model sets"
        ),
        pytest.param(
            [run("face", 1.0), run("face", 1.0, sessions=1)],
            "one model set and session",
            id="two session counts",
        ),
    ],
)
def test_a_summary_refuses_runs_that_are_not_repeats_of_one_measurement(
    runs: list[RunFigures], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        summary(runs)
