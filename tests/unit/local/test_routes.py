"""The local route table: what reconcile writes is what the web front reads."""

from __future__ import annotations

import threading

import pytest

from infra.local.routes import LocalRoutes
from lambdas.aws.routes import RouteTable


def test_put_replace_and_delete() -> None:
    routes: RouteTable = LocalRoutes()
    routes.put("i-0abc", "127.0.0.1:8080")
    routes.put("i-0def", "127.0.0.1:8081")
    routes.put("i-0abc", "127.0.0.1:8082")
    assert routes.entries() == {"i-0abc": "127.0.0.1:8082", "i-0def": "127.0.0.1:8081"}
    routes.delete("i-0abc")
    routes.delete("i-0abc")  # again: no error
    assert routes.entries() == {"i-0def": "127.0.0.1:8081"}


def test_entries_is_a_snapshot() -> None:
    routes = LocalRoutes()
    routes.put("i-0abc", "127.0.0.1:8080")
    snapshot = routes.entries()
    routes.delete("i-0abc")
    assert snapshot == {"i-0abc": "127.0.0.1:8080"}
    assert routes.get("i-0abc") is None


@pytest.mark.parametrize(
    ("host", "origin"),
    [("", "a:1"), ("i/0", "a:1"), ("x" * 65, "a:1"), ("i-0\n", "a:1"), ("i-0", "")],
)
def test_what_no_socket_path_could_name_is_refused(host: str, origin: str) -> None:
    with pytest.raises(ValueError, match=r"host id|no origin"):
        LocalRoutes().put(host, origin)


def test_concurrent_writers_lose_nothing() -> None:
    routes = LocalRoutes()

    def write(worker: int) -> None:
        for n in range(200):
            routes.put(f"i-{worker}-{n}", f"127.0.0.1:{n}")
            if n % 2:
                routes.delete(f"i-{worker}-{n}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(routes.entries()) == 8 * 100
