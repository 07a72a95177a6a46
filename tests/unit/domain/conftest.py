"""Builders for the control plane's pure logic: the group as Auto Scaling describes it, host
records at given milestones, the fleet record with its leases, short-timeout settings, and an
in-memory store that applies `decide`'s actions as DynamoDB and Auto Scaling would.

Tables build their cases at import time, so the builders are plain functions (imported from
here); the `settings` fixture builds the settings inside the test, after the root conftest has
stripped the shell's SPINUP_* variables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import pytest

from lambdas.domain.actions import (
    Action,
    Call,
    Converge,
    DeleteRoute,
    Path,
    Protect,
    PutRoute,
    Replace,
    SetDesired,
    Transition,
    Update,
)
from lambdas.domain.decide import applied
from lambdas.domain.fleet import GroupInstance, GroupView, ScalingFailure
from lambdas.domain.host_record import FLEET_KEY, FleetRecord, HostRecord, Lease, host_id_of
from lambdas.domain.model import Snapshot
from lambdas.settings import Settings

NOW = 1_800_000_000.0
"""2027-01-15 08:00 UTC: far from midnight, so the daily budget is not cut by the day."""
TODAY = "2027-01-15"

# Short timeouts, so that a table reads in small numbers.
IDLE_S = 60
"""SPINUP_IDLE_AFTER_DISCONNECT_S"""
IDLE_CONNECTED_S = 120
BOOT_GRACE_S = 300
RELEASE_GRACE_S = 10
MAX_RUN_S = 3600
PER_HOST = 2
MAX_REPLACEMENTS = 1
DAILY_GPU_HOURS = 12.0
WS_BASE = "wss://d111.cloudfront.example/ws"
TYPES = ("g4dn.xlarge", "g5.xlarge")

A, B, C = "i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2", "i-0ccccccccccccccc3"
"""Host ids are instance ids; sorted A < B < C, the order decide visits them in."""


def make_settings(**overrides: Any) -> Settings:
    """Every timing field given, so no SPINUP_* variable can change a case."""
    fields: dict[str, Any] = {
        "table_name": "spinup-test",
        "group_name": "spinup-gpu",
        "auth_mode": "apigw",
        "ws_base_url": WS_BASE,
        "idle_after_disconnect_s": IDLE_S,
        "idle_while_connected_s": IDLE_CONNECTED_S,
        "boot_grace_s": BOOT_GRACE_S,
        "release_grace_s": RELEASE_GRACE_S,
        "max_run_s": MAX_RUN_S,
        "daily_gpu_hours": DAILY_GPU_HOURS,
        "max_sessions_per_user": 2,
        "sessions_per_host": PER_HOST,
        "max_replacements": MAX_REPLACEMENTS,
        "instance_types": TYPES,
    }
    return Settings(**{**fields, **overrides})


@pytest.fixture
def settings() -> Settings:
    return make_settings()


# --- what Auto Scaling says ------------------------------------------------------------------


def dns(host_id: str) -> str:
    return f"ec2-{host_id[-1]}.compute-1.amazonaws.example"


def instance(
    host_id: str = A,
    lifecycle: str = "InService",
    *,
    ec2: Any = "running",
    protected: bool = True,
    launch_time: float | None = NOW - 3600,
    public_dns: str | None = None,
    instance_type: str = TYPES[0],
) -> GroupInstance:
    """An instance of the group; a running one has a public DNS name (its origin)."""
    if public_dns is None:
        public_dns = dns(host_id) if ec2 == "running" else ""
    return GroupInstance(
        instance_id=host_id,
        lifecycle_state=lifecycle,
        instance_type=instance_type,
        ec2_state=ec2,
        zone="us-east-1a",
        launch_time=launch_time,
        public_dns=public_dns,
        protected=protected,
    )


def warm(host_id: str, **fields: Any) -> GroupInstance:
    """Back in the warm pool: stopped, not serving."""
    return instance(host_id, "Warmed:Stopped", ec2="stopped", protected=False, **fields)


def failure(at: float, message: str = "We currently do not have sufficient capacity") -> Any:
    return ScalingFailure(at=at, message=message)


# --- the records -----------------------------------------------------------------------------

Milestone = Literal[
    "fresh", "started", "routed", "backend_up", "models_loaded", "ready_unrouted", "ready"
]
_STEPS: dict[str, tuple[str, ...]] = {
    "fresh": (),
    "started": (),
    "routed": ("routed",),
    "backend_up": ("routed", "backend_up"),
    "models_loaded": ("routed", "backend_up", "models_loaded"),
    "ready_unrouted": ("backend_up", "models_loaded", "ready"),
    "ready": ("routed", "backend_up", "models_loaded", "ready"),
}


def host(
    host_id: str = A,
    milestone: Milestone = "ready",
    *,
    started: float = NOW - 1000,
    ready: float | None = None,
    run_seq: int | None = None,
    **fields: Any,
) -> HostRecord:
    """Host `host_id`'s record at a milestone of its current run (started at `started`):

    - fresh: no run yet (a new record);
    - started: the run is open (the instance is launching), nothing written yet;
    - routed: the instance runs and its route is written (5 s after the start);
    - backend_up / models_loaded: the backend's first steps (30 s, 60 s);
    - ready: warmed up at `ready` (default: 100 s after the start), so ready; its cold start
      recorded;
    - ready_unrouted: warmed up, but its route was never written (so not ready).
    Later fields (activity, `generation`, ...) are passed as keyword arguments.
    """
    if milestone == "fresh":
        return HostRecord(host_id=host_id, run_seq=run_seq or 0, **fields)
    run_seq = run_seq or 1
    steps = _STEPS[milestone]
    record: dict[str, Any] = {"run_seq": run_seq, "run_open": True, "started_at": started}
    if "routed" in steps:
        record |= {"routed_at": started + 5, "route_origin": dns(host_id)}
    if "backend_up" in steps:
        record["backend_up_at"] = started + 30
    if "models_loaded" in steps:
        record["models_loaded_at"] = started + 60
    if "ready" in steps:
        record["ready_at"] = started + 100 if ready is None else ready
    if milestone == "ready":
        record["cold_start_seq"] = run_seq
    return HostRecord(host_id=host_id, **{**record, **fields})


def lease(
    on: str | None = None, *, created: float = NOW - 60, expires: float | None = None
) -> Lease:
    """A session's lease, placed on host `on` (None: waiting for a host)."""
    until = created + MAX_RUN_S if expires is None else expires
    return Lease(created_at=created, expires_at=until, host_id=on)


def sessions(*placements: tuple[str, str, str | None]) -> dict[str, dict[str, Lease]]:
    """(user, session id, host or None) → the fleet record's `sessions` map; each session is
    a second older than the next, in the order given."""
    found: dict[str, dict[str, Lease]] = {}
    for n, (user, sid, on) in enumerate(placements):
        found.setdefault(user, {})[sid] = lease(on, created=NOW - 60 + n)
    return found


def fleet(*hosts: HostRecord, **fields: Any) -> FleetRecord:
    """The fleet record matching `hosts`: a run for each open run, the desired capacity one
    host per run; `fields` override (`sessions=`, `desired_capacity=`, ...)."""
    runs = {h.host_id: h.started_at for h in hosts if h.run_open and h.started_at is not None}
    defaults: dict[str, Any] = {"runs": runs, "desired_capacity": len(runs), "version": 10}
    return FleetRecord(**{**defaults, **fields})


def snapshot(
    *hosts: HostRecord,
    fleet_record: FleetRecord | None = None,
    instances: Sequence[GroupInstance] | None = None,
    desired: int | None = None,
    max_size: int = 2,
    failures: Sequence[ScalingFailure] = (),
    routes: Mapping[str, str] | None = None,
    **fleet_fields: Any,
) -> Snapshot:
    """A consistent picture by default: each host with an open run serves (InService,
    running, protected), its route written once it was routed; the group's desired capacity
    is the fleet record's."""
    if routes is None:
        routes = {h.host_id: h.route_origin for h in hosts if h.run_open and h.route_origin}
    record = fleet_record or fleet(*hosts, **{"routes": routes, **fleet_fields})
    if instances is None:
        instances = [instance(h.host_id) for h in hosts if h.run_open]
    group = GroupView(
        name="spinup-gpu",
        desired_capacity=record.desired_capacity if desired is None else desired,
        min_size=0,
        max_size=max_size,
        instances=tuple(instances),
        failures=tuple(failures),
    )
    return Snapshot(fleet=record, group=group, hosts={h.host_id: h for h in hosts})


# --- reading decisions -----------------------------------------------------------------------


def names(actions: Iterable[Action]) -> list[str]:
    return [action.name for action in actions]


def transitions(actions: Iterable[Action], name: str | None = None) -> list[Transition]:
    return [a for a in actions if isinstance(a, Transition) and name in (None, a.name)]


def only(actions: Iterable[Action], name: str) -> Transition:
    (found,) = transitions(actions, name)
    return found


def calls(actions: Iterable[Action]) -> list[Call]:
    """Every call, in order: a transition's follow it, a converge's are its own."""
    found: list[Call] = []
    for action in actions:
        found += action.then if isinstance(action, Transition) else action.calls
    return found


def fleet_update(transition: Transition) -> Update:
    (update,) = [u for u in transition.updates if u.key == FLEET_KEY]
    return update


def host_update(transition: Transition, host_id: str) -> Update:
    (update,) = [u for u in transition.updates if u.key == f"host#{host_id}"]
    return update


# --- applying decisions in memory ------------------------------------------------------------


class GuardFailedError(AssertionError):
    """A transition whose guard did not hold on the records it was decided on: `decide`
    chained its own writes wrongly (in the store it would be skipped)."""


def _lookup(data: Mapping[str, Any], path: Path) -> tuple[bool, Any]:
    node: Any = data
    for step in path:
        if not isinstance(node, Mapping) or step not in node:
            return False, None
        node = node[step]
    return True, node


def _check(update: Update, data: Mapping[str, Any]) -> None:
    for name, expected in update.expect.items():
        there, value = _lookup(data, (name,))
        actual = value if there else None
        if actual != expected:
            raise GuardFailedError(f"{update.key}: {name} is {actual!r}, expected {expected!r}")
    for path in update.present:
        if not _lookup(data, path)[0]:
            raise GuardFailedError(f"{update.key}: {path} absent")
    for path in update.absent:
        if _lookup(data, path)[0]:
            raise GuardFailedError(f"{update.key}: {path} present")
    for path, n in update.smaller:
        there, value = _lookup(data, path)
        if not there or len(value) >= n:
            raise GuardFailedError(f"{update.key}: {path} holds {n} or more")


def _record_data(record: FleetRecord | HostRecord) -> dict[str, Any]:
    """The record as stored: absent attributes are absent, not None."""
    return record.model_dump(exclude_none=True)


def apply_update(
    update: Update, fleet_record: FleetRecord, hosts: Mapping[str, HostRecord]
) -> tuple[FleetRecord, dict[str, HostRecord]]:
    """One update, as DynamoDB makes it (its guard checked first)."""
    hosts = dict(hosts)
    if update.key == FLEET_KEY:
        _check(update, _record_data(fleet_record))
        changes: dict[Path, Any] = dict(update.set)
        for name, amount in update.add.items():
            changes[(name,)] = getattr(fleet_record, name) + amount
        return applied(fleet_record, changes), hosts
    host_id = host_id_of(update.key)
    record = hosts.get(host_id) or HostRecord(host_id=host_id)
    _check(update, _record_data(record))
    top: dict[str, Any] = {}
    for path, value in update.set.items():
        assert len(path) == 1, f"a host record has no map fields: {path}"
        top[path[0]] = value
    for name, amount in update.add.items():
        top[name] = getattr(record, name) + amount
    hosts[host_id] = record.model_copy(update=top)
    return fleet_record, hosts


def apply_call(call: Call, group: GroupView, routes: dict[str, str]) -> GroupView:
    """A call, as Auto Scaling and the route table answer it at once (no instance appears
    or leaves: the group's own work is the test's to simulate)."""
    match call:
        case SetDesired(capacity=n):
            return dataclasses.replace(group, desired_capacity=n)
        case Protect(host_id=host_id, protected=flag):
            return dataclasses.replace(
                group,
                instances=tuple(
                    dataclasses.replace(i, protected=flag) if i.instance_id == host_id else i
                    for i in group.instances
                ),
            )
        case Replace(host_id=host_id):
            return dataclasses.replace(
                group,
                instances=tuple(
                    dataclasses.replace(i, lifecycle_state="Terminating")
                    if i.instance_id == host_id
                    else i
                    for i in group.instances
                ),
            )
        case PutRoute(host_id=host_id, origin=origin):
            routes[host_id] = origin
        case DeleteRoute(host_id=host_id):
            routes.pop(host_id, None)
    return group


def try_apply(snapshot: Snapshot, transition: Transition) -> Snapshot | None:
    """The records after `transition` if its guards hold (all its updates or none), as the
    store applies it; None when it would be skipped. Calls are not made."""
    fleet_record, hosts = snapshot.fleet, dict(snapshot.hosts)
    try:
        for update in transition.updates:
            fleet_record, hosts = apply_update(update, fleet_record, hosts)
    except GuardFailedError:
        return None
    return dataclasses.replace(snapshot, fleet=fleet_record, hosts=hosts)


def apply_actions(snapshot: Snapshot, actions: Iterable[Action], *, with_calls: bool) -> Snapshot:
    """The snapshot after `actions`: every transition must apply (decide chains its own
    writes), its calls and the converges' calls made when `with_calls`."""
    fleet_record, hosts = snapshot.fleet, dict(snapshot.hosts)
    group, routes = snapshot.group, dict(snapshot.fleet.routes)
    for action in actions:
        if isinstance(action, Transition):
            for update in action.updates:
                fleet_record, hosts = apply_update(update, fleet_record, hosts)
            made: tuple[Call, ...] = action.then
        else:
            assert isinstance(action, Converge)
            made = action.calls
        if with_calls:
            for call in made:
                group = apply_call(call, group, routes)
    return Snapshot(fleet=fleet_record, group=group, hosts=hosts)
