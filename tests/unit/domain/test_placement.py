"""`placement.place`: where waiting sessions go, and how many more hosts the rest need."""

from __future__ import annotations

import pytest

from lambdas.domain.placement import Candidate, place

READY = True
STARTING = False

# case → (waiting session ids, candidates (host, ready, placed), per host, on the way,
#         expected assignments, expected hosts needed)
CASES: dict[
    str,
    tuple[list[str], list[tuple[str, bool, int]], int, int, dict[str, str], int],
] = {
    "no_host_at_all_one_session_needs_one_host": (["s1"], [], 8, 0, {}, 1),
    "no_host_nine_sessions_need_two_hosts_of_eight": ([f"s{n}" for n in range(9)], [], 8, 0, {}, 2),
    "a_host_on_the_way_takes_the_first_host_needed": (["s1", "s2", "s3"], [], 2, 1, {}, 1),
    "hosts_on_the_way_beyond_the_need_never_make_it_negative": (["s1"], [], 2, 3, {}, 0),
    "a_ready_host_with_room_takes_the_session": (
        ["s1"],
        [("h1", READY, 1)],
        2,
        0,
        {"s1": "h1"},
        0,
    ),
    "a_ready_host_before_a_starting_one": (
        ["s1"],
        [("h1", STARTING, 0), ("h2", READY, 1)],
        2,
        0,
        {"s1": "h2"},
        0,
    ),
    "the_fullest_ready_host_first_so_the_others_empty_out": (
        ["s1"],
        [("h1", READY, 1), ("h2", READY, 3)],
        4,
        0,
        {"s1": "h2"},
        0,
    ),
    "a_full_host_takes_nothing_the_next_one_does": (
        ["s1", "s2"],
        [("h1", READY, 2), ("h2", READY, 0)],
        2,
        0,
        {"s1": "h2", "s2": "h2"},
        0,
    ),
    "a_starting_host_takes_what_the_ready_ones_cannot": (
        ["s1", "s2", "s3"],
        [("h1", READY, 1), ("h2", STARTING, 0)],
        2,
        0,
        {"s1": "h1", "s2": "h2", "s3": "h2"},
        0,
    ),
    "oldest_first_the_rest_waits_for_new_hosts": (
        ["s1", "s2", "s3", "s4"],
        [("h1", READY, 1)],
        2,
        0,
        {"s1": "h1"},
        2,
    ),
    "all_hosts_full_scale_out_by_the_hosts_needed": (
        ["s1", "s2", "s3"],
        [("h1", READY, 2), ("h2", STARTING, 2)],
        2,
        0,
        {},
        2,
    ),
    "equally_full_hosts_in_id_order": (
        ["s1"],
        [("h2", READY, 1), ("h1", READY, 1)],
        2,
        0,
        {"s1": "h1"},
        0,
    ),
    "one_session_per_host": (
        ["s1", "s2"],
        [("h1", READY, 0), ("h2", STARTING, 0)],
        1,
        0,
        {"s1": "h1", "s2": "h2"},
        0,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_place(case: str) -> None:
    waiting, hosts, per_host, on_the_way, assignments, needed = CASES[case]
    candidates = [Candidate(host_id=h, ready=r, placed=p) for h, r, p in hosts]
    placement = place(waiting, candidates, per_host=per_host, on_the_way=on_the_way)
    assert placement.assignments == assignments
    assert placement.hosts_needed == needed


@pytest.mark.parametrize("per_host", [1, 2, 8])
@pytest.mark.parametrize("waiting", [0, 1, 7, 17])
def test_no_host_ever_takes_more_than_its_room(per_host: int, waiting: int) -> None:
    candidates = [Candidate("h1", ready=True, placed=0), Candidate("h2", ready=False, placed=1)]
    candidates = [c for c in candidates if c.placed <= per_host]
    placement = place(
        [f"s{n}" for n in range(waiting)], candidates, per_host=per_host, on_the_way=0
    )
    for candidate in candidates:
        taken = sum(1 for h in placement.assignments.values() if h == candidate.host_id)
        assert candidate.placed + taken <= per_host
    left = waiting - len(placement.assignments)
    assert placement.hosts_needed * per_host >= left
    assert (placement.hosts_needed - 1) * per_host < left or placement.hosts_needed == 0
