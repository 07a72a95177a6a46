"""A circuit breaker for the Triton connection: fail fast while Triton is unreachable.

Only transport failures (UNAVAILABLE, DEADLINE_EXCEEDED) count: a request Triton answered,
even with an error, proves the connection works. The state machine is pure over an injected
clock, so tests drive time instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    """Requests flow."""
    OPEN = "open"
    """Requests fail fast until the cooldown has passed."""
    HALF_OPEN = "half_open"
    """One probe request is in flight; its outcome closes or reopens the breaker."""


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown_s <= 0:
            raise ValueError("failure_threshold >= 1 and cooldown_s > 0 required")
        self._threshold = failure_threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._since = 0.0
        """When the breaker opened, or when the current probe started."""

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        """May a request go out now? In OPEN past the cooldown this admits one probe."""
        now = self._clock()
        if self._state is BreakerState.CLOSED:
            return True
        if now - self._since < self._cooldown_s:
            return False
        # Cooldown over (OPEN), or a probe never reported back (HALF_OPEN, e.g. its caller
        # was cancelled): let one more probe through rather than stay stuck.
        self._state = BreakerState.HALF_OPEN
        self._since = now
        return True

    def record_success(self) -> None:
        self._state = BreakerState.CLOSED
        self._failures = 0

    def record_failure(self) -> None:
        """A transport failure."""
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._state = BreakerState.OPEN
            self._since = self._clock()
