"""The Triton circuit breaker's state machine, driven by a hand-moved clock."""

from __future__ import annotations

import pytest

from gpu_host.backend.breaker import BreakerState, CircuitBreaker
from tests.unit.gpu_host.dataplane_unit_support import FakeClock


def make(clock: FakeClock, threshold: int = 3, cooldown: float = 5.0) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, cooldown_s=cooldown, clock=clock)


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """Read through a call, so the type checker does not carry narrowing across steps."""
    return breaker.state


def test_starts_closed_and_allows(clock: FakeClock) -> None:
    breaker = make(clock)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.allow()


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = make(clock, threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_failure_count(clock: FakeClock) -> None:
    breaker = make(clock, threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.CLOSED


def test_open_fails_fast_until_cooldown_then_admits_one_probe(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1, cooldown=5.0)
    breaker.record_failure()
    clock.advance(4.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert not breaker.allow(), "only one probe at a time"


@pytest.mark.parametrize(
    ("probe_ok", "state"), [(True, BreakerState.CLOSED), (False, BreakerState.OPEN)]
)
def test_probe_outcome_decides(clock: FakeClock, probe_ok: bool, state: BreakerState) -> None:
    breaker = make(clock, threshold=3, cooldown=1.0)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(1.0)
    assert breaker.allow()
    if probe_ok:
        breaker.record_success()
    else:
        breaker.record_failure()  # one failure in half-open reopens, whatever the threshold
    assert state_of(breaker) is state
    assert breaker.allow() is probe_ok


def test_reopened_breaker_waits_a_full_cooldown_again(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1, cooldown=2.0)
    breaker.record_failure()
    clock.advance(2.0)
    assert breaker.allow()
    breaker.record_failure()
    clock.advance(1.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()


def test_a_lost_probe_does_not_wedge_the_breaker(clock: FakeClock) -> None:
    """Given a probe whose caller never reported back, when another cooldown passes,
    then a new probe is admitted."""
    breaker = make(clock, threshold=1, cooldown=1.0)
    breaker.record_failure()
    clock.advance(1.0)
    assert breaker.allow()
    clock.advance(0.5)
    assert not breaker.allow()
    clock.advance(0.5)
    assert breaker.allow()


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_rejects_nonsense_parameters(clock: FakeClock, threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        make(clock, threshold=threshold, cooldown=cooldown)
