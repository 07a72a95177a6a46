"""The local host agent's decision: bring the host stack up exactly while the instance runs."""

from __future__ import annotations

import pytest

from infra.local.agent import Step, plan


@pytest.mark.parametrize(
    ("state", "stack_up", "expected"),
    [
        ("running", False, Step.BRING_UP),
        ("running", True, None),
        ("pending", False, None),
        ("pending", True, Step.TAKE_DOWN),
        ("stopping", True, Step.TAKE_DOWN),
        ("stopped", True, Step.TAKE_DOWN),
        ("stopped", False, None),
        ("terminated", True, Step.TAKE_DOWN),
        (None, True, Step.TAKE_DOWN),
        (None, False, None),
    ],
)
def test_plan(state: str | None, stack_up: bool, expected: Step | None) -> None:
    assert plan(state, stack_up=stack_up) is expected
