"""`eventually` and `eventually_async`: poll a probe until its value holds, or fail saying
what never held and what was seen last."""

from __future__ import annotations

import itertools

import pytest

from tests.support.waiting import eventually, eventually_async

SHORT_S = 0.2
TICK_S = 0.01


def test_returns_the_first_value_that_holds() -> None:
    values = itertools.count(1)
    found = eventually(
        lambda: next(values), lambda n: n >= 3, what="3", timeout_s=SHORT_S, interval_s=TICK_S
    )
    assert found == 3


def test_truthiness_is_the_default_condition() -> None:
    values = iter([0, "", None, "ready"])
    found = eventually(lambda: next(values), what="a value", timeout_s=SHORT_S, interval_s=TICK_S)
    assert found == "ready"


def test_fails_naming_what_never_held_and_the_last_value() -> None:
    expected = r"^the door opens: never held within 0\.2 s; last seen: 'closed'$"
    with pytest.raises(AssertionError, match=expected):
        eventually(
            lambda: "closed",
            lambda door: door == "open",
            what="the door opens",
            timeout_s=SHORT_S,
            interval_s=TICK_S,
        )


def test_ignored_exceptions_mean_not_yet() -> None:
    tries = itertools.count(1)

    def refused_twice() -> str:
        if next(tries) <= 2:
            raise ConnectionRefusedError("not listening yet")
        return "up"

    found = eventually(
        refused_twice, what="up", ignoring=(OSError,), timeout_s=SHORT_S, interval_s=TICK_S
    )
    assert found == "up"


def test_an_ignored_exception_is_the_last_value_seen() -> None:
    def refused() -> str:
        raise ConnectionRefusedError("not listening yet")

    with pytest.raises(AssertionError, match="last seen: ConnectionRefusedError"):
        eventually(refused, what="up", ignoring=(OSError,), timeout_s=SHORT_S, interval_s=TICK_S)


def test_other_exceptions_end_the_wait_at_once() -> None:
    tries = itertools.count(1)

    def dies() -> bool:
        next(tries)
        raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="exited"):
        eventually(dies, what="ready", ignoring=(OSError,), timeout_s=5)
    assert next(tries) == 2, "one try, no retry"


def test_pauses_between_tries_as_told() -> None:
    values = itertools.count(1)
    pauses: list[float] = []
    eventually(
        lambda: next(values), lambda n: n >= 3, what="3", interval_s=0.5, pause=pauses.append
    )
    assert pauses == [0.5, 0.5]


async def test_async_waits_on_a_plain_probe() -> None:
    values = itertools.count(1)
    found = await eventually_async(
        lambda: next(values), lambda n: n >= 3, what="3", timeout_s=SHORT_S, interval_s=TICK_S
    )
    assert found == 3


async def test_async_awaits_a_coroutine_probe() -> None:
    values = itertools.count(1)

    async def probe() -> int:
        return next(values)

    found = await eventually_async(
        probe, lambda n: n >= 3, what="3", timeout_s=SHORT_S, interval_s=TICK_S
    )
    assert found == 3


async def test_async_fails_like_the_sync_one() -> None:
    async def probe() -> list[int]:
        return [1, 2]

    expected = r"^empty: never held within 0\.2 s; last seen: \[1, 2\]$"
    with pytest.raises(AssertionError, match=expected):
        await eventually_async(
            probe, lambda v: not v, what="empty", timeout_s=SHORT_S, interval_s=TICK_S
        )
