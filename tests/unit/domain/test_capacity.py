"""Capacity fallback decisions: the order of types, and what each outcome writes."""

from __future__ import annotations

import pytest

from lambdas.domain import capacity
from lambdas.domain.capacity import Attempt, Outcome
from lambdas.settings import Settings

NO_CAPACITY = "InsufficientInstanceCapacity"
CONFIGURED = ("g5.xlarge", "g6.xlarge", "g4dn.xlarge")
"""Not the default order: the order is the configuration's, whatever it is."""


@pytest.mark.parametrize(
    ("tried", "expected"),
    [
        ((), "g5.xlarge"),
        (("g5.xlarge",), "g6.xlarge"),
        (("g5.xlarge", "g6.xlarge"), "g4dn.xlarge"),
        (("g5.xlarge", "g6.xlarge", "g4dn.xlarge"), None),
    ],
)
def test_types_are_tried_in_the_configured_order(
    tried: tuple[str, ...], expected: str | None, settings: Settings
) -> None:
    configured = settings.model_copy(update={"instance_types": CONFIGURED})
    attempts = [Attempt(name, Outcome.NO_CAPACITY, NO_CAPACITY) for name in tried]
    assert capacity.next_type(configured, attempts) == expected


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("InsufficientInstanceCapacity", Outcome.NO_CAPACITY),
        ("Unsupported", Outcome.NO_CAPACITY),
        ("UnauthorizedOperation", Outcome.FAILED),
        ("InvalidInstanceID.NotFound", Outcome.FAILED),
    ],
)
def test_classify(code: str, outcome: Outcome) -> None:
    assert capacity.classify(code) is outcome


def test_progress_names_every_attempt_and_the_next_type() -> None:
    attempts = [Attempt("g5.xlarge", Outcome.NO_CAPACITY, NO_CAPACITY)]
    change = capacity.progress(4, attempts, "g6.xlarge")
    assert change.expect == {"run_seq": 4, "run_open": True}
    assert change.changes["message"] == (
        "g5.xlarge: no capacity (InsufficientInstanceCapacity); trying g6.xlarge…"
    )


def test_a_fallback_start_says_so() -> None:
    attempts = [
        Attempt("g5.xlarge", Outcome.NO_CAPACITY, NO_CAPACITY),
        Attempt("g6.xlarge", Outcome.STARTED),
    ]
    change = capacity.started(4, attempts)
    assert change.changes == {
        "instance_type": "g6.xlarge",
        "message": (
            "g5.xlarge: no capacity (InsufficientInstanceCapacity); g6.xlarge: started. "
            "Running as g6.xlarge."
        ),
    }


def test_a_first_try_start_leaves_no_note() -> None:
    change = capacity.started(4, [Attempt("g5.xlarge", Outcome.STARTED)])
    assert change.changes["message"] == ""


def test_when_every_type_lacks_capacity_nothing_is_left_half_started() -> None:
    attempts = [Attempt(n, Outcome.NO_CAPACITY, NO_CAPACITY) for n in ("g5.xlarge", "g6.xlarge")]
    change = capacity.exhausted(4, attempts, "us-east-1a")
    assert change.name == "capacity_exhausted"
    assert change.changes["desired"] == "stopped"
    assert change.changes["run_open"] is False
    assert change.changes["sessions"] == {}
    error = str(change.changes["error"])
    assert "us-east-1a" in error
    assert "g5.xlarge: no capacity" in error
    assert "g6.xlarge: no capacity" in error
    assert "SPINUP_INSTANCE_TYPES" in error


def test_a_transient_state_gives_the_claim_back_for_a_retry() -> None:
    attempts = [Attempt("g5.xlarge", Outcome.FAILED, "IncorrectInstanceState")]
    change = capacity.retry_later(4, attempts)
    assert change.changes["run_open"] is False
    assert "desired" not in change.changes
