"""Reconcile: read the snapshot, decide, act. Idempotent; safe to run from many processes.

It runs on every control API request, on every EC2 state-change event and on a schedule
(`reconcile_once` is also what the local mode's loop calls).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from botocore.exceptions import ClientError

from lambdas.aws.clients import Clients
from lambdas.aws.ec2 import error_code
from lambdas.domain import capacity
from lambdas.domain.actions import Action, Ec2Call, RetryStop, Transition
from lambdas.domain.capacity import Attempt, Outcome
from lambdas.domain.decide import decide
from lambdas.domain.host_record import HostRecord
from lambdas.domain.model import InstanceView, Snapshot
from lambdas.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileResult:
    before: Snapshot
    actions: tuple[Action, ...]
    done: tuple[str, ...]
    """Names of the transitions that were applied and the EC2 calls that were made."""
    after: Snapshot


def read_snapshot(clients: Clients) -> Snapshot:
    return Snapshot(host=clients.store.load_host(), instance=clients.ec2.describe())


def reconcile_once(settings: Settings, clients: Clients, now: float) -> ReconcileResult:
    before = read_snapshot(clients)
    actions = tuple(decide(before, settings, now))
    done = execute(actions, before, settings, clients)
    after = read_snapshot(clients) if done else before
    return ReconcileResult(before=before, actions=actions, done=tuple(done), after=after)


def execute(
    actions: tuple[Action, ...], snapshot: Snapshot, settings: Settings, clients: Clients
) -> list[str]:
    """Apply each action under its own guard; one that lost its race is skipped, not retried
    (the next reconcile decides again from fresh state)."""
    done: list[str] = []
    for action in actions:
        if isinstance(action, RetryStop):
            _stop_instance(clients)
            done.append(action.name)
            continue
        if not clients.store.apply(action):
            log.info("skipped %s: the host record changed since it was read", action.name)
            continue
        log.info("applied %s", action.name)
        done.append(action.name)
        if action.then is Ec2Call.START:
            claimed = snapshot.host.model_copy(update=dict(action.changes))
            done.extend(_start_with_fallback(claimed, snapshot.instance, settings, clients))
        elif action.then is Ec2Call.STOP:
            _stop_instance(clients)
            done.append("stop_instance")
    return done


def _stop_instance(clients: Clients) -> None:
    try:
        clients.ec2.stop()
    except ClientError as error:
        if error_code(error) not in capacity.RETRY_LATER_ERRORS:
            raise
        # Pending instances cannot be stopped yet; `stop_pending` makes the next run retry.
        log.info("stop deferred: %s", error)


def _start_with_fallback(
    claimed: HostRecord, instance: InstanceView | None, settings: Settings, clients: Clients
) -> list[str]:
    """Start the claimed run, switching the stopped instance to the next configured type
    while EC2 has no capacity for the current one. Every attempt ends up in the message."""
    run_seq = claimed.run_seq
    attempts: list[Attempt] = []
    current = instance.instance_type if instance else None
    while (kind := capacity.next_type(settings, attempts)) is not None:
        try:
            if current != kind:
                clients.ec2.set_instance_type(kind)
                current = kind
            clients.ec2.start()
        except ClientError as error:
            code = error_code(error)
            attempts.append(Attempt(kind, capacity.classify(code), code))
            log.warning("start as %s failed: %s", kind, error)
            if code in capacity.RETRY_LATER_ERRORS:
                return _finish(capacity.retry_later(run_seq, attempts), clients)
            if attempts[-1].outcome is Outcome.FAILED:
                return _finish(capacity.failed(run_seq, attempts), clients)
            upcoming = capacity.next_type(settings, attempts)
            if upcoming is not None:
                clients.store.apply(capacity.progress(run_seq, attempts, upcoming))
            continue
        attempts.append(Attempt(kind, Outcome.STARTED))
        return ["start_instance", *_finish(capacity.started(run_seq, attempts), clients)]
    zone = instance.zone if instance else None
    return _finish(capacity.exhausted(run_seq, attempts, zone), clients)


def _finish(transition: Transition, clients: Clients) -> list[str]:
    if clients.store.apply(transition):
        log.info("applied %s", transition.name)
        return [transition.name]
    log.warning("skipped %s: the run changed while starting it", transition.name)
    return []
