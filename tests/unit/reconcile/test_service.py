"""Reconcile's edges (`lambdas.reconcile.service`): the snapshot it reads and how it acts.

A transition's calls follow it only when it was applied; one that lost its guard is skipped,
not retried; a busy group (`ScalingActivityInProgress`) defers a call to the next reconcile,
which converges on the records; any other error fails the reconcile."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from lambdas.aws.clients import Clients
from lambdas.domain.actions import (
    Action,
    Converge,
    DeleteRoute,
    Protect,
    PutRoute,
    Replace,
    SetDesired,
    Transition,
    Update,
)
from lambdas.domain.fleet import GroupView
from lambdas.domain.host_record import FleetRecord, HostRecord, host_key
from lambdas.reconcile.service import execute, read_snapshot
from tests.unit.domain.conftest import A, B, instance, snapshot, warm


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "SetDesiredCapacity")


@dataclass
class FakeFleet:
    view: GroupView
    fail: dict[str, str] = field(default_factory=dict)
    """method name → error code it raises."""
    made: list[str] = field(default_factory=list)

    def _call(self, name: str) -> None:
        if name in self.fail:
            raise client_error(self.fail[name])
        self.made.append(name)

    def describe(self) -> GroupView:
        return self.view

    def set_desired_capacity(self, capacity: int) -> None:
        self._call(f"set_desired_capacity({capacity})")

    def set_protection(self, instance_id: str, *, protected: bool) -> None:
        self._call(f"set_protection({instance_id}, {protected})")

    def replace(self, instance_id: str) -> None:
        self._call(f"replace({instance_id})")


@dataclass
class FakeRoutes:
    table: dict[str, str] = field(default_factory=dict)

    def entries(self) -> Mapping[str, str]:
        return dict(self.table)

    def put(self, host_id: str, origin: str) -> None:
        self.table[host_id] = origin

    def delete(self, host_id: str) -> None:
        self.table.pop(host_id, None)


@dataclass
class FakeStore:
    applies: dict[str, bool] = field(default_factory=dict)
    """transition name → whether its guards hold (default: they do)."""
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    def apply(self, transition: Transition) -> bool:
        ok = self.applies.get(transition.name, True)
        if ok:
            self.applied.append(transition.name)
        return ok

    def load_fleet(self) -> FleetRecord:
        return FleetRecord(version=3)

    def load_hosts(self, host_ids: Iterable[str]) -> dict[str, HostRecord]:
        return {h: self.hosts[h] for h in host_ids if h in self.hosts}

    def ensure_host(self, host_id: str) -> None:
        self.created.append(host_id)
        self.hosts.setdefault(host_id, HostRecord(host_id=host_id))


def clients(fleet: FakeFleet, store: FakeStore, routes: FakeRoutes | None = None) -> Clients:
    return Clients(fleet=fleet, routes=routes or FakeRoutes(), store=cast(Any, store))


def transition(name: str, *then: Any) -> Transition:
    return Transition(name, (Update(host_key(A), set={("message",): name}),), then)


def group() -> GroupView:
    return snapshot(instances=[instance(A)]).group


def test_a_transitions_calls_follow_it_in_order() -> None:
    fleet, routes = FakeFleet(group()), FakeRoutes({B: "old"})
    actions: tuple[Action, ...] = (
        transition("leave", DeleteRoute(B), Protect(A, protected=False), SetDesired(0)),
        Converge("route", (PutRoute(A, "ec2-a"),)),
        transition("replace", Replace(A)),
    )
    done = execute(actions, clients(fleet, FakeStore(), routes))
    assert done == [
        "leave",
        "delete_route(i-0bbbbbbbbbbbbbbb2)",
        "unprotect(i-0aaaaaaaaaaaaaaa1)",
        "set_desired_capacity(0)",
        "put_route(i-0aaaaaaaaaaaaaaa1)",
        "replace",
        "replace(i-0aaaaaaaaaaaaaaa1)",
    ]
    assert fleet.made == [f"set_protection({A}, False)", "set_desired_capacity(0)", f"replace({A})"]
    assert routes.table == {A: "ec2-a"}


def test_a_transition_that_lost_its_guard_makes_no_call() -> None:
    fleet, store = FakeFleet(group()), FakeStore(applies={"leave": False})
    actions = (transition("leave", SetDesired(0)), transition("routed"))
    assert execute(actions, clients(fleet, store)) == ["routed"]
    assert fleet.made == []


@pytest.mark.parametrize("code", ["ScalingActivityInProgress", "ResourceContention"])
def test_a_busy_group_defers_the_call_to_the_next_reconcile(code: str) -> None:
    fleet = FakeFleet(group(), fail={"set_desired_capacity(1)": code})
    actions = (transition("leave", Protect(A, protected=False), SetDesired(1)),)
    assert execute(actions, clients(fleet, FakeStore())) == ["leave", f"unprotect({A})"]


def test_any_other_error_fails_the_reconcile() -> None:
    fleet = FakeFleet(group(), fail={"set_desired_capacity(1)": "AccessDenied"})
    with pytest.raises(ClientError, match="AccessDenied"):
        execute((Converge("converge_capacity", (SetDesired(1),)),), clients(fleet, FakeStore()))


def test_the_snapshot_has_a_record_for_every_serving_instance() -> None:
    """The backend's updates require its host record to exist: reconcile creates it as soon
    as the group puts the instance in service (never for a warm one)."""
    view = snapshot(instances=[instance(A, "Pending", ec2="pending"), warm(B)]).group
    store = FakeStore()
    routes = FakeRoutes({A: "ec2-a"})
    read = read_snapshot(clients(FakeFleet(view), store, routes))
    assert store.created == [A]
    assert read.hosts == {A: HostRecord(host_id=A)}
    assert read.fleet.routes == {}, "the routes are the fleet record's: the table is not read"
    assert read.fleet.version == 3
    assert read.group is view
