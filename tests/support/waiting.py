"""Waiting on a condition, the one way the tests wait: never a sleep as synchronization.

`eventually(probe)` calls `probe` until its value satisfies `until` (truthiness by default)
and returns that value; after `timeout_s` it fails with an `AssertionError` that names what
never held and the last value seen. `eventually_async` is the same for async tests: the
probe may be a plain function or a coroutine function, and the pause between tries yields
to the event loop instead of blocking it.

A sync wait pauses with `time.sleep` unless told otherwise: a Playwright test passes the
page's own wait, so that the browser's events keep arriving while it polls.

An exception from the probe ends the wait at once (so a probe can assert what must never
happen meanwhile, such as the process under test exiting), unless it is one of `ignoring`,
which count as "not yet" (a connection refused while a server starts).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

TIMEOUT_S = 10.0
INTERVAL_S = 0.05


class _Waiting:
    """One wait's bookkeeping: the deadline, and what was seen last (for the failure)."""

    def __init__(self, what: str, timeout_s: float) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.last: object = "nothing (the probe never returned)"

    def give_up(self) -> bool:
        return time.monotonic() >= self.deadline

    def failure(self) -> AssertionError:
        return AssertionError(
            f"{self.what}: never held within {self.timeout_s:g} s; last seen: {self.last!r}"
        )


def eventually(
    probe: Callable[[], T],
    until: Callable[[T], object] = bool,
    *,
    what: str,
    timeout_s: float = TIMEOUT_S,
    interval_s: float = INTERVAL_S,
    ignoring: tuple[type[Exception], ...] = (),
    pause: Callable[[float], object] = time.sleep,
) -> T:
    """The first value of `probe()` for which `until(value)` holds; `pause(interval_s)`
    between tries."""
    waiting = _Waiting(what, timeout_s)
    while True:
        try:
            value = probe()
        except ignoring as exc:
            waiting.last = exc
        else:
            if until(value):
                return value
            waiting.last = value
        if waiting.give_up():
            raise waiting.failure()
        pause(interval_s)


@overload
async def eventually_async(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], object] = ...,
    *,
    what: str,
    timeout_s: float = ...,
    interval_s: float = ...,
    ignoring: tuple[type[Exception], ...] = ...,
) -> T: ...


@overload
async def eventually_async(
    probe: Callable[[], T],
    until: Callable[[T], object] = ...,
    *,
    what: str,
    timeout_s: float = ...,
    interval_s: float = ...,
    ignoring: tuple[type[Exception], ...] = ...,
) -> T: ...


async def eventually_async(
    probe: Callable[[], Any],
    until: Callable[[Any], object] = bool,
    *,
    what: str,
    timeout_s: float = TIMEOUT_S,
    interval_s: float = INTERVAL_S,
    ignoring: tuple[type[Exception], ...] = (),
) -> Any:
    """`eventually` for async tests: the first value of `probe()` (awaited when it is
    awaitable) for which `until(value)` holds."""
    waiting = _Waiting(what, timeout_s)
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
        except ignoring as exc:
            waiting.last = exc
        else:
            if until(value):
                return value
            waiting.last = value
        if waiting.give_up():
            raise waiting.failure()
        await asyncio.sleep(interval_s)
