"""Where waiting sessions go: a ready host with room, else a starting one, else new capacity.

Pure. Hosts are filled fullest-first (among those with room), so that the others empty out and
leave on their idle timeouts; ready hosts before starting ones, since a ready host serves now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    host_id: str
    ready: bool
    placed: int
    """Sessions already placed on it."""


@dataclass(frozen=True)
class Placement:
    assignments: dict[str, str]
    """session id → host id."""
    hosts_needed: int
    """More hosts the sessions left waiting need (beyond those already on their way)."""


def place(
    waiting: Sequence[str],
    candidates: Sequence[Candidate],
    *,
    per_host: int,
    on_the_way: int,
) -> Placement:
    """Assign `waiting` (session ids, oldest first) to `candidates`; `on_the_way`: hosts the
    group is launching that are not candidates yet (each takes `per_host` when it appears)."""
    room = {c.host_id: per_host - c.placed for c in candidates}
    order = sorted(candidates, key=lambda c: (not c.ready, -c.placed, c.host_id))
    assignments: dict[str, str] = {}
    queue = list(waiting)
    for candidate in order:
        while queue and room[candidate.host_id] > 0:
            assignments[queue.pop(0)] = candidate.host_id
            room[candidate.host_id] -= 1
    needed = math.ceil(len(queue) / per_host) if queue else 0
    return Placement(assignments=assignments, hosts_needed=max(0, needed - on_the_way))
