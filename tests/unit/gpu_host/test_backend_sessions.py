"""Session bookkeeping (admitted through the host store) and origin checks."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import pytest

from gpu_host.backend.host_store import HostStore
from gpu_host.backend.sessions import SessionRegistry, TooManySessionsError
from gpu_host.backend.ws import origin_allowed


async def _noop() -> None:
    return None


async def test_per_user_session_limit(host_store: HostStore) -> None:
    registry = SessionRegistry(store=host_store, max_per_user=2)
    first = await registry.open(user="ann", models=("text",), shutdown=_noop)
    await registry.open(user="ann", models=("text",), shutdown=_noop)
    await registry.open(user="bob", models=("text",), shutdown=_noop)
    with pytest.raises(TooManySessionsError, match="2 open sessions"):
        await registry.open(user="ann", models=("text",), shutdown=_noop)
    await registry.close(first.id)
    await registry.open(user="ann", models=("text",), shutdown=_noop)
    assert await registry.count() == 3
    assert registry.local_count == 3


async def test_the_limit_counts_the_sessions_of_every_worker(host_store: HostStore) -> None:
    """Given another worker (another connection to the store) holding ann's sessions, this
    worker refuses her next one; the host count is both workers' and the local one its own."""
    other = HostStore(host_store.path, pid=os.getppid())  # a live process: not purged
    for name in ("a", "b"):
        other.admit(session_id=name, user="ann", models=("text",), max_per_user=2)
    registry = SessionRegistry(store=host_store, max_per_user=2)
    with pytest.raises(TooManySessionsError):
        await registry.open(user="ann", models=("text",), shutdown=_noop)
    await registry.open(user="bob", models=("text",), shutdown=_noop)
    assert (await registry.count(), registry.local_count) == (3, 1)
    other.close()


async def test_a_refused_session_is_not_this_workers(host_store: HostStore) -> None:
    registry = SessionRegistry(store=host_store, max_per_user=1)
    await registry.open(user="ann", models=(), shutdown=_noop)
    with pytest.raises(TooManySessionsError):
        await registry.open(user="ann", models=(), shutdown=_noop)
    assert registry.local_count == 1


async def test_shutdown_all_notifies_every_session(host_store: HostStore) -> None:
    closed: list[str] = []
    registry = SessionRegistry(store=host_store, max_per_user=5)

    def closer(name: str) -> Callable[[], Awaitable[None]]:
        async def shutdown() -> None:
            closed.append(name)

        return shutdown

    for name in ("a", "b"):
        await registry.open(user=name, models=(), shutdown=closer(name))
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
