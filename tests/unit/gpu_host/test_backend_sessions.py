"""Session bookkeeping, origin checks and the heartbeat throttle (pure parts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gpu_host.backend.reporter import heartbeat_due
from gpu_host.backend.sessions import SessionRegistry, TooManySessionsError
from gpu_host.backend.ws import origin_allowed


async def _noop() -> None:
    return None


def test_per_user_session_limit() -> None:
    registry = SessionRegistry(max_per_user=2)
    first = registry.open(user="ann", models=("text",), shutdown=_noop)
    registry.open(user="ann", models=("text",), shutdown=_noop)
    registry.open(user="bob", models=("text",), shutdown=_noop)
    with pytest.raises(TooManySessionsError, match="2 open sessions"):
        registry.open(user="ann", models=("text",), shutdown=_noop)
    registry.close(first.id)
    registry.open(user="ann", models=("text",), shutdown=_noop)
    assert registry.count == 3


async def test_shutdown_all_notifies_every_session() -> None:
    closed: list[str] = []
    registry = SessionRegistry(max_per_user=5)

    def closer(name: str) -> Callable[[], Awaitable[None]]:
        async def shutdown() -> None:
            closed.append(name)

        return shutdown

    for name in ("a", "b"):
        registry.open(user=name, models=(), shutdown=closer(name))
    await registry.shutdown_all()
    assert sorted(closed) == ["a", "b"]


@pytest.mark.parametrize(
    ("origin", "allowed", "ok"),
    [
        ("https://evil.example", (), True),
        ("https://app.example", ("https://app.example",), True),
        ("https://app.example/", ("https://app.example",), True),
        ("https://evil.example", ("https://app.example",), False),
        ("http://app.example", ("https://app.example",), False),
        ("null", ("https://app.example",), False),
        (None, ("https://app.example",), True),
    ],
)
def test_origin_allowed(origin: str | None, allowed: tuple[str, ...], ok: bool) -> None:
    assert origin_allowed(origin, allowed) is ok


@pytest.mark.parametrize(
    ("last", "now", "due"),
    [(None, 0.0, True), (100.0, 129.9, False), (100.0, 130.0, True), (100.0, 500.0, True)],
)
def test_heartbeat_due_at_most_every_period(last: float | None, now: float, due: bool) -> None:
    assert heartbeat_due(last, now, 30.0) is due
