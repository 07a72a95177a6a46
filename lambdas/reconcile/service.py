"""Reconcile: read the snapshot, decide, act. Idempotent; safe to run from many processes.

It runs on every control API request, on every EC2 and Auto Scaling event and on a schedule
(`reconcile_once` is also what the local mode's loop calls).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from botocore.exceptions import ClientError

from lambdas.aws.clients import Clients
from lambdas.aws.errors import error_code
from lambdas.aws.fleet import SCALING_IN_PROGRESS, FleetGateway
from lambdas.aws.routes import RouteTable
from lambdas.domain.actions import (
    Action,
    Call,
    Converge,
    DeleteRoute,
    Protect,
    PutRoute,
    Replace,
    SetDesired,
    Transition,
    call_name,
)
from lambdas.domain.decide import decide
from lambdas.domain.model import Snapshot
from lambdas.settings import Settings

log = logging.getLogger(__name__)

RETRY_LATER_ERRORS = frozenset({SCALING_IN_PROGRESS, "ResourceContention"})
"""The group is busy: the records already say what it should be, and the next reconcile
converges it (a call is never retried in a loop here)."""


@dataclass(frozen=True)
class ReconcileResult:
    before: Snapshot
    actions: tuple[Action, ...]
    done: tuple[str, ...]
    """Names of the transitions that were applied and the calls that were made."""
    after: Snapshot


def read_snapshot(clients: Clients) -> Snapshot:
    """The records and the group, with a host record for every instance that serves (the
    backend's updates require the record to exist). The routes are the fleet record's (what
    was written): the route table itself is only written."""
    group = clients.fleet.describe()
    fleet = clients.store.load_fleet()
    ids = {i.instance_id for i in group.instances} | set(fleet.runs)
    hosts = clients.store.load_hosts(ids)
    for instance in group.serving:
        if instance.instance_id not in hosts:
            clients.store.ensure_host(instance.instance_id)
    missing = {i.instance_id for i in group.serving} - set(hosts)
    if missing:
        hosts.update(clients.store.load_hosts(missing))
    return Snapshot(fleet=fleet, group=group, hosts=hosts)


def reconcile_once(settings: Settings, clients: Clients, now: float) -> ReconcileResult:
    before = read_snapshot(clients)
    actions = tuple(decide(before, settings, now))
    done = execute(actions, clients)
    after = read_snapshot(clients) if done else before
    return ReconcileResult(before=before, actions=actions, done=tuple(done), after=after)


def execute(actions: tuple[Action, ...], clients: Clients) -> list[str]:
    """Apply each action under its own guard; one that lost its race is skipped, not retried
    (the next reconcile decides again from fresh state). A transition's calls follow it only
    when it was applied."""
    done: list[str] = []
    for action in actions:
        if isinstance(action, Transition):
            if not clients.store.apply(action):
                log.info("skipped %s: the records changed since they were read", action.name)
                continue
            log.info("applied %s", action.name)
            done.append(action.name)
            calls = action.then
        else:
            assert isinstance(action, Converge)
            calls = action.calls
        for call in calls:
            if _call(call, clients):
                done.append(call_name(call))
    return done


def perform(call: Call, fleet: FleetGateway, routes: RouteTable) -> None:
    """Make one call on the fleet or the route table (the trace replay's simulated ones too)."""
    match call:
        case SetDesired(capacity=capacity):
            fleet.set_desired_capacity(capacity)
        case Protect(host_id=host_id, protected=protected):
            fleet.set_protection(host_id, protected=protected)
        case Replace(host_id=host_id):
            fleet.replace(host_id)
        case PutRoute(host_id=host_id, origin=origin):
            routes.put(host_id, origin)
        case DeleteRoute(host_id=host_id):
            routes.delete(host_id)


def _call(call: Call, clients: Clients) -> bool:
    try:
        perform(call, clients.fleet, clients.routes)
    except ClientError as error:
        if error_code(error) not in RETRY_LATER_ERRORS:
            raise
        log.info("%s deferred: %s", call_name(call), error)
        return False
    log.info("%s", call_name(call))
    return True
