"""`decide` follows each host through its life in the group: a run opens when the group puts
the instance in service, its route is written once it runs (ready only then), its cold start
is recorded once, a run that ends outside Spinup is closed, a leave is converged until the
group has the host back, a failed scale-out is reported, and the group's capacity is kept on
the fleet record's."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.domain.actions import (
    Converge,
    DeleteRoute,
    Protect,
    PutRoute,
    SetDesired,
)
from lambdas.domain.decide import COLD_STARTS_KEPT, decide
from lambdas.domain.model import Snapshot
from lambdas.settings import Settings
from tests.unit.domain.conftest import (
    NOW,
    TYPES,
    A,
    B,
    C,
    calls,
    dns,
    failure,
    fleet_update,
    host,
    host_update,
    instance,
    names,
    only,
    sessions,
    snapshot,
    warm,
)

BUSY: dict[str, Any] = {"last_inference_at": NOW - 5, "connected_sessions": 1}
LEFT: dict[str, Any] = {
    "stop_pending": True,
    "run_open": False,
    "stopped_at": NOW - 30,
    "stop_reason": "idle",
}
"""A host whose leave was written 30 s ago."""
BOOTING: dict[str, Any] = {"started": NOW - 40}
"""Well within the boot grace."""


def scene(*hosts: Any, **kwargs: Any) -> Snapshot:
    return snapshot(*hosts, **kwargs)


# case → (snapshot, the actions decide takes, by name)
CASES: dict[str, tuple[Snapshot, list[str]]] = {
    # the run
    "given_an_instance_put_in_service_without_a_record_then_its_run_opens": (
        scene(instances=[instance(A, "Pending", ec2="pending")], desired_capacity=1),
        ["open_run"],
    ),
    "given_an_instance_in_service_after_an_earlier_run_then_a_new_run_opens": (
        scene(host(A, "fresh", run_seq=3), instances=[instance(A)], desired_capacity=1),
        ["open_run"],
    ),
    "given_an_instance_in_the_warm_pool_then_nothing": (
        scene(host(A, "fresh"), instances=[warm(A)]),
        [],
    ),
    "given_an_instance_on_its_way_into_the_warm_pool_then_nothing": (
        scene(instances=[instance(A, "Warmed:Pending:Wait", ec2="running", protected=False)]),
        [],
    ),
    # its route
    "given_a_run_whose_instance_is_still_pending_then_no_route_yet": (
        scene(host(A, "started", **BOOTING), instances=[instance(A, "Pending", ec2="pending")]),
        [],
    ),
    "given_a_running_host_without_a_route_then_put_it_then_mark_it_routed": (
        scene(host(A, "started", **BOOTING)),
        ["route", "routed"],
    ),
    "given_its_route_written_but_not_recorded_then_only_mark_it_routed": (
        scene(host(A, "started", **BOOTING), routes={A: dns(A)}),
        ["routed"],
    ),
    "given_its_route_pointing_at_an_old_origin_then_route_again": (
        scene(host(A, "backend_up", **BOOTING), routes={A: "ec2-old.compute-1.amazonaws.example"}),
        ["route", "routed"],
    ),
    "given_a_host_that_moved_to_a_new_origin_then_route_and_record_it": (
        scene(
            host(A, "backend_up", route_origin="ec2-old.compute-1.amazonaws.example", **BOOTING),
            routes={A: dns(A)},
        ),
        ["routed"],
    ),
    "given_a_routed_booting_host_then_nothing": (
        scene(host(A, "models_loaded", **BOOTING)),
        [],
    ),
    "given_a_stale_route_of_a_host_without_a_run_then_delete_it": (
        scene(host(A, **BUSY), routes={A: dns(A), C: dns(C)}),
        ["unroute"],
    ),
    # protection and the cold start
    "given_a_serving_host_with_an_open_run_unprotected_then_protect_it": (
        scene(host(A, **BUSY), instances=[instance(A, protected=False)]),
        ["protect"],
    ),
    "given_a_host_ready_for_the_first_time_this_run_then_record_its_cold_start": (
        scene(host(A, cold_start_seq=0, **BUSY)),
        ["record_cold_start"],
    ),
    "given_its_cold_start_recorded_then_nothing": (scene(host(A, **BUSY)), []),
    "given_a_warm_backend_not_routed_then_no_cold_start_yet": (
        scene(host(A, "ready_unrouted", **BOOTING), instances=[instance(A, public_dns="")]),
        [],
    ),
    # a run that ended outside Spinup
    "given_an_open_run_whose_instance_is_gone_then_the_run_ends": (
        scene(host(A, **BUSY), instances=[], routes={A: dns(A)}),
        ["run_ended"],
    ),
    "given_an_open_run_whose_instance_is_back_in_the_warm_pool_then_the_run_ends": (
        scene(host(A, **BUSY), instances=[warm(A)]),
        ["run_ended"],
    ),
    "given_an_open_run_whose_instance_terminates_then_the_run_ends": (
        scene(host(A, **BUSY), instances=[instance(A, "Terminating", ec2="shutting-down")]),
        ["run_ended"],
    ),
    # a leave being converged
    "given_a_leave_whose_host_still_serves_protected_then_unprotect_and_unroute_again": (
        scene(host(A, **LEFT), instances=[instance(A)], routes={A: dns(A)}),
        ["unroute", "leave_again"],
    ),
    "given_a_leave_whose_host_still_serves_unprotected_then_wait": (
        scene(host(A, **LEFT), instances=[instance(A, protected=False)]),
        [],
    ),
    "given_a_leave_whose_host_is_back_in_the_warm_pool_then_it_has_left": (
        scene(host(A, **LEFT), instances=[warm(A)]),
        ["left"],
    ),
    "given_a_leave_whose_host_is_gone_then_it_has_left": (
        scene(host(A, **LEFT), instances=[]),
        ["left"],
    ),
    "given_a_leave_whose_host_was_started_again_since_then_it_has_left": (
        scene(host(A, **LEFT), instances=[instance(A, launch_time=NOW - 10)]),
        ["left"],
    ),
    "given_a_leave_whose_host_has_no_launch_time_then_wait": (
        scene(host(A, **LEFT), instances=[instance(A, launch_time=None, protected=False)]),
        [],
    ),
    # the group's capacity
    "given_the_groups_capacity_differs_from_the_fleet_records_then_converge_it": (
        scene(host(A, **BUSY), desired=2),
        ["converge_capacity"],
    ),
    "given_a_scale_out_that_failed_then_report_it": (
        scene(
            host(A, **BUSY),
            desired_capacity=2,
            scaled_out_at=NOW - 60,
            failures=[failure(NOW - 30)],
            sessions=sessions(("ann", "s1", A), ("bob", "s2", None)),
        ),
        ["scale_out_failed"],
    ),
    "given_a_failure_older_than_the_scale_out_then_keep_waiting": (
        scene(
            host(A, **BUSY),
            desired_capacity=2,
            scaled_out_at=NOW - 60,
            failures=[failure(NOW - 90)],
            sessions=sessions(("ann", "s1", A), ("cy", "s3", A), ("bob", "s2", None)),
        ),
        [],
    ),
    "given_a_failure_after_the_hosts_arrived_then_nothing_to_report": (
        scene(
            host(A, **BUSY),
            host(B, **BUSY),
            scaled_out_at=NOW - 60,
            failures=[failure(NOW - 30)],
        ),
        [],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_decide(case: str, settings: Settings) -> None:
    given, expected = CASES[case]
    assert names(decide(given, settings, NOW)) == expected


def test_a_run_opens_guarded_on_the_run_it_follows(settings: Settings) -> None:
    given = scene(host(A, "fresh", run_seq=3, error="old", message="old"), instances=[instance(A)])
    opened = only(decide(given, settings, NOW), "open_run")
    change = host_update(opened, A)
    assert change.expect == {"run_seq": 3, "run_open": False, "stop_pending": False}
    assert change.set == {
        ("run_seq",): 4,
        ("run_open",): True,
        ("started_at",): NOW,
        ("instance_type",): TYPES[0],
        ("routed_at",): None,
        ("route_origin",): None,
        ("connected_sessions",): 0,
        ("error",): None,
        ("message",): "",
    }
    assert fleet_update(opened).set[("runs", A)] == NOW


def test_an_instance_put_in_service_outside_spinup_is_counted(settings: Settings) -> None:
    """Converging the group must never take away a host that runs (someone raised the
    capacity in the console): the fleet record's desired capacity counts it."""
    given = scene(host(B, **BUSY), instances=[instance(B), instance(A)], desired=2)
    opened = only(decide(given, settings, NOW), "open_run")
    assert fleet_update(opened).set[("desired_capacity",)] == 2
    assert not [c for c in calls(decide(given, settings, NOW)) if isinstance(c, SetDesired)]


def test_the_route_is_written_before_the_host_is_marked_routed(settings: Settings) -> None:
    """A host is ready only once sockets reach it: the record says routed only after the
    route table has the entry (a failed put fails the reconcile before the mark)."""
    actions = decide(scene(host(A, "started", **BOOTING)), settings, NOW)
    route, _ = actions
    assert isinstance(route, Converge)
    assert route.calls == (PutRoute(A, dns(A)),)
    routed = only(actions, "routed")
    change = host_update(routed, A)
    assert change.expect == {"run_seq": 1, "run_open": True}
    assert change.set == {("routed_at",): NOW, ("route_origin",): dns(A)}
    # The fleet record keeps what was written: reconcile never lists the route table.
    assert fleet_update(routed).set[("routes", A)] == dns(A)


def test_a_stale_route_is_deleted(settings: Settings) -> None:
    actions = decide(scene(host(A, **BUSY), routes={A: dns(A), C: dns(C)}), settings, NOW)
    assert calls(actions) == [DeleteRoute(C)]


def test_a_cold_start_is_recorded_once_per_run_and_resets_the_replacements(
    settings: Settings,
) -> None:
    full = tuple(float(n) for n in range(COLD_STARTS_KEPT))
    ready = host(A, run_seq=5, cold_start_seq=4, started=NOW - 500, ready=NOW - 380, **BUSY)
    record = only(
        decide(scene(ready, cold_starts=full, replacements=1), settings, NOW), "record_cold_start"
    )
    assert host_update(record, A).expect == {"cold_start_seq": 4, "run_seq": 5}
    assert host_update(record, A).set == {("cold_start_seq",): 5}
    assert fleet_update(record).set[("cold_starts",)] == (*full[1:], 120.0)
    assert fleet_update(record).set[("replacements",)] == 0


def test_a_run_that_ended_outside_spinup_puts_its_sessions_back(settings: Settings) -> None:
    """The group replaced the instance (a failed health check) or someone terminated it:
    its sessions wait for another host; the replacement is already on its way."""
    gone = host(A, **BUSY)
    held = sessions(("ann", "s1", A), ("bob", "s2", None))
    actions = decide(scene(gone, instances=[], routes={A: dns(A)}, sessions=held), settings, NOW)
    ended = only(actions, "run_ended")
    assert ended.then == (DeleteRoute(A),)
    assert host_update(ended, A).expect == {"run_seq": 1, "run_open": True}
    assert host_update(ended, A).set[("run_open",)] is False
    assert "outside Spinup" in str(host_update(ended, A).set[("message",)])
    change = fleet_update(ended)
    assert change.set[("sessions", "ann", "s1", "host_id")] is None
    assert change.set[("runs", A)] is None
    assert ("desired_capacity",) not in change.set
    assert names(actions) == ["run_ended"]


def test_a_leave_is_converged_by_unprotecting_and_unrouting_again(settings: Settings) -> None:
    actions = decide(
        scene(host(A, **LEFT), instances=[instance(A)], routes={A: dns(A)}), settings, NOW
    )
    assert calls(actions) == [DeleteRoute(A), Protect(A, protected=False)]


def test_a_leave_ends_once_the_host_is_out(settings: Settings) -> None:
    left = only(decide(scene(host(A, **LEFT), instances=[warm(A)]), settings, NOW), "left")
    assert host_update(left, A).expect == {"run_seq": 1, "stop_pending": True}
    assert host_update(left, A).set == {("stop_pending",): False}


def test_a_failed_scale_out_lowers_the_capacity_and_says_what_was_tried(
    settings: Settings,
) -> None:
    given, _ = CASES["given_a_scale_out_that_failed_then_report_it"]
    failed = only(decide(given, settings, NOW), "scale_out_failed")
    change = fleet_update(failed)
    assert change.set[("desired_capacity",)] == 1
    assert change.set[("scaled_out_at",)] is None
    assert change.set[("sessions", "bob", "s2")] is None
    assert ("sessions", "ann", "s1") not in change.set
    error = str(change.set[("error",)])
    assert "We currently do not have sufficient capacity" in error
    assert "g4dn.xlarge, g5.xlarge" in error
    assert change.set[("message",)] == error
    assert failed.then == (SetDesired(1),)


def test_the_group_is_converged_on_the_fleet_records_capacity(settings: Settings) -> None:
    actions = decide(scene(host(A, **BUSY), desired=2), settings, NOW)
    assert calls(actions) == [SetDesired(1)]
