"""The supervisor's pure decisions: when a dead worker is replaced, and how its end reads."""

from __future__ import annotations

import signal

import pytest

from gpu_host.backend.supervisor import MAX_RESTART_DELAY_S, exit_description, restart_delay


@pytest.mark.parametrize(
    ("quick_exits", "delay"),
    [(0, 0.0), (1, 0.0), (2, 1.0), (3, 2.0), (4, 4.0), (6, 16.0), (7, 30.0), (50, 30.0)],
)
def test_a_crash_loop_backs_off_and_a_lone_death_is_replaced_at_once(
    quick_exits: int, delay: float
) -> None:
    assert restart_delay(quick_exits) == delay
    assert restart_delay(quick_exits) <= MAX_RESTART_DELAY_S


@pytest.mark.parametrize(
    ("returncode", "words"),
    [
        (-signal.SIGKILL, "signal SIGKILL"),
        (-signal.SIGTERM, "signal SIGTERM"),
        (1, "exit status 1"),
    ],
)
def test_exit_description(returncode: int, words: str) -> None:
    assert exit_description(returncode) == words
