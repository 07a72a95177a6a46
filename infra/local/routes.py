"""The local mode's route table: host id → origin, what the CloudFront KeyValueStore is in AWS.

Reconcile writes it (`lambdas.aws.routes.RouteTable`), the local web front reads it to route
`/ws/{host}/inference` as the CloudFront Function does. In memory: a run of the local mode
starts with no host running, so there is nothing to keep across runs.
"""

from __future__ import annotations

import re
import threading

from lambdas.domain.routing import HOST_ID_PATTERN

_HOST_ID = re.compile(HOST_ID_PATTERN)


class LocalRoutes:
    """Thread-safe: reconcile writes from its thread while the web front reads on its loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, str] = {}

    def entries(self) -> dict[str, str]:
        """A copy: the caller may keep it while the table changes."""
        with self._lock:
            return dict(self._routes)

    def get(self, host_id: str) -> str | None:
        with self._lock:
            return self._routes.get(host_id)

    def put(self, host_id: str, origin: str) -> None:
        if not _HOST_ID.fullmatch(host_id):
            raise ValueError(f"not a host id: {host_id!r}")
        if not origin:
            raise ValueError(f"no origin for host {host_id}")
        with self._lock:
            self._routes[host_id] = origin

    def delete(self, host_id: str) -> None:
        """Deleting a host that has no route is no error (as with the KeyValueStore adapter)."""
        with self._lock:
            self._routes.pop(host_id, None)
