"""The AWS side of the idle-trace replay, in memory: the control table (the fleet record and the
host records, with DynamoDB's conditional writes), the Auto Scaling group with its warm pool,
and the route table.

Only what `decide` relies on is modelled, each as AWS documents it:
- the table applies a `Transition` only if every guard of every update holds, then all of its
  updates (TransactWriteItems); the fleet record's changes go through `decide.applied`, the
  host records' through `model_copy`;
- the group keeps `desired_capacity` instances in service: a scale-out starts a warm (stopped)
  instance if the pool has one, else launches a new one; the instance is `Pending` while EC2
  starts it, then `Pending:Wait` (running, with a public name) until the host completes the
  launch hook once its backend is ready, then `InService`
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html);
- a scale-in takes an instance that is not protected from scale-in (any of them: which one the
  termination policy picks is not ours to know), never a protected one; with every instance
  protected the capacity waits until one is unprotected
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-protection.html);
  the instance goes back to the warm pool, stopped (`InstanceReusePolicy`), and starts again
  under the same id with a new launch time;
- `replace` terminates an instance for good; the group launches another in its place.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from lambdas.domain.actions import Path, Transition, Update, Value
from lambdas.domain.decide import applied
from lambdas.domain.fleet import LAUNCHING, Ec2State, GroupInstance, GroupView
from lambdas.domain.host_record import FLEET_KEY, FleetRecord, HostRecord, host_id_of

# --- the control table ---------------------------------------------------------------------


def _at(record: BaseModel, path: Path) -> object:
    """The value at `path` in a record (None where the path does not exist)."""
    value: object = getattr(record, path[0], None)
    for step in path[1:]:
        if isinstance(value, Mapping):
            value = value.get(step)
        elif isinstance(value, BaseModel):
            value = getattr(value, step, None)
        else:
            return None
    return value


class SimTable:
    """The fleet record and the host records, as DynamoDB holds them."""

    def __init__(self) -> None:
        self.fleet = FleetRecord()
        self.hosts: dict[str, HostRecord] = {}
        self.version = 0
        """Bumped by every write but the backend's heartbeats (`activity`)."""
        self.activity = 0
        """Bumped by the backend's heartbeats: frames inferred (activity) and nothing else."""

    def ensure_host(self, host_id: str) -> None:
        if host_id not in self.hosts:
            self.hosts[host_id] = HostRecord(host_id=host_id)
            self.version += 1

    def apply(self, transition: Transition) -> bool:
        """All of the transition's updates if every guard holds (one transaction), else none."""
        if not all(self._holds(update) for update in transition.updates):
            return False
        for update in transition.updates:
            self._write(update)
        self.version += 1
        return True

    def backend_write(self, host_id: str, changes: Mapping[str, object], *, bump: bool) -> None:
        """An update by the backend, under `attribute_exists`: skipped without a record."""
        host = self.hosts.get(host_id)
        if host is None:
            return
        update = dict(changes)
        if bump:
            update["generation"] = host.generation + 1
            self.activity += 1
        else:
            self.version += 1
        self.hosts[host_id] = host.model_copy(update=update)

    def _record(self, key: str) -> BaseModel | None:
        return self.fleet if key == FLEET_KEY else self.hosts.get(host_id_of(key))

    def _holds(self, update: Update) -> bool:
        record = self._record(update.key)
        if record is None:
            return False
        return (
            all(getattr(record, name) == value for name, value in update.expect.items())
            and all(_at(record, path) is not None for path in update.present)
            and all(_at(record, path) is None for path in update.absent)
            and all(_size(_at(record, path)) < n for path, n in update.smaller)
        )

    def _write(self, update: Update) -> None:
        record = self._record(update.key)
        assert record is not None
        changes: dict[Path, Value] = dict(update.set)
        for name, amount in update.add.items():
            changes[(name,)] = (getattr(record, name) or 0) + amount
        if update.key == FLEET_KEY:
            self.fleet = applied(self.fleet, changes)
            return
        assert all(len(path) == 1 for path in changes), "host records have top-level fields"
        host = self.hosts[host_id_of(update.key)]
        self.hosts[host.host_id] = host.model_copy(update={p[0]: v for p, v in changes.items()})


def _size(value: object) -> int:
    return len(value) if isinstance(value, Mapping) else 0


# --- the group -------------------------------------------------------------------------------


class CallRefusedError(Exception):
    """A call Auto Scaling refuses (its ValidationError): the reconcile making it fails."""


@dataclass
class SimInstance:
    instance_id: str
    lifecycle_state: str
    ec2_state: Ec2State
    launch_time: float
    protected: bool = True
    """NewInstancesProtectedFromScaleIn: protected from its launch."""
    public_dns: str = ""
    launches: int = 0
    """Bumped on every start: events of an earlier start find it moved on."""

    @property
    def serving(self) -> bool:
        return self.lifecycle_state in LAUNCHING or self.lifecycle_state == "InService"

    def view(self, instance_type: str) -> GroupInstance:
        return GroupInstance(
            instance_id=self.instance_id,
            lifecycle_state=self.lifecycle_state,
            instance_type=instance_type,
            ec2_state=self.ec2_state,
            launch_time=self.launch_time,
            public_dns=self.public_dns,
            protected=self.protected,
        )


class GroupEvents:
    """What the world does when the group moves an instance (the simulated clock, EC2's and
    the host's timing, and the checks); `SimGroup` calls these."""

    def clock(self) -> float:
        raise NotImplementedError

    def launched(self, instance: SimInstance) -> None:
        """A start began (from the warm pool or new): EC2 and the host take it from here."""

    def taken_out(self, instance: SimInstance, *, replaced: bool) -> None:
        """The instance left service (scale-in or replacement): its sockets close now."""


class SimGroup:
    """The Auto Scaling group with a warm pool (`FleetGateway`)."""

    def __init__(
        self,
        events: GroupEvents,
        rng: random.Random,
        *,
        max_size: int,
        instance_type: str = "g5.xlarge",
        later: Callable[[float, Callable[[], None]], None],
    ) -> None:
        self.events = events
        self.rng = rng
        self.max_size = max_size
        self.instance_type = instance_type
        self.desired = 0
        self.instances: dict[str, SimInstance] = {}
        self._later = later
        self._ids = itertools.count(1)
        self._view: GroupView | None = None
        """What `describe` answers until the group changes (`_changed`)."""
        self.version = 0

    # FleetGateway

    def describe(self) -> GroupView:
        if self._view is None:
            self._view = GroupView(
                name="bench",
                desired_capacity=self.desired,
                min_size=0,
                max_size=self.max_size,
                instances=tuple(i.view(self.instance_type) for i in self.instances.values()),
            )
        return self._view

    def _changed(self) -> None:
        self._view = None
        self.version += 1

    def set_desired_capacity(self, capacity: int) -> None:
        if not 0 <= capacity <= self.max_size:
            raise CallRefusedError(f"desired capacity {capacity} outside 0..{self.max_size}")
        self.desired = capacity
        self._changed()
        self.converge()

    def set_protection(self, instance_id: str, *, protected: bool) -> None:
        instance = self.instances.get(instance_id)
        if instance is None or not instance.serving:
            # Auto Scaling's ValidationError: the reconcile fails, the next one decides again.
            raise CallRefusedError(f"{instance_id} is not in service")
        instance.protected = protected
        self._changed()
        self.converge()

    def replace(self, instance_id: str) -> None:
        instance = self.instances.get(instance_id)
        if instance is None or not instance.serving:
            return
        self._take_out(instance, replaced=True)
        self.converge()

    # the group's own work

    def serving(self) -> list[SimInstance]:
        return [i for i in self.instances.values() if i.serving]

    def converge(self) -> None:
        self._changed()
        serving = self.serving()
        excess = len(serving) - self.desired
        if excess > 0:
            unprotected = [i for i in serving if not i.protected]
            self.rng.shuffle(unprotected)
            for instance in unprotected[:excess]:
                self._take_out(instance, replaced=False)
        for _ in range(self.desired - len(serving)):
            self._launch()

    def _launch(self) -> None:
        warm = sorted(i for i, x in self.instances.items() if x.lifecycle_state == "Warmed:Stopped")
        if warm:
            instance = self.instances[warm[0]]
        else:
            instance_id = f"i-{next(self._ids):017x}"
            instance = SimInstance(instance_id, "Pending", "pending", self.events.clock())
            self.instances[instance_id] = instance
        instance.lifecycle_state = "Pending"
        instance.ec2_state = "pending"
        instance.launch_time = self.events.clock()
        instance.protected = True
        instance.public_dns = ""
        instance.launches += 1
        self._changed()
        self.events.launched(instance)

    def running(self, instance: SimInstance) -> None:
        """EC2 says running: the launch hook holds it in Pending:Wait until the host is ready."""
        instance.lifecycle_state = "Pending:Wait"
        instance.ec2_state = "running"
        instance.public_dns = f"ec2-{instance.instance_id}.compute-1.amazonaws.com"
        self._changed()

    def complete_launch(self, instance: SimInstance) -> None:
        if instance.lifecycle_state == "Pending:Wait":
            instance.lifecycle_state = "InService"
            self._changed()

    def _take_out(self, instance: SimInstance, *, replaced: bool) -> None:
        instance.lifecycle_state = "Terminating" if replaced else "Warmed:Pending"
        instance.ec2_state = "shutting-down" if replaced else "stopping"
        instance.public_dns = ""
        launches = instance.launches
        self._changed()
        self.events.taken_out(instance, replaced=replaced)

        def settled() -> None:
            if instance.launches != launches:
                return
            if replaced:
                self.instances.pop(instance.instance_id, None)
            else:
                instance.lifecycle_state = "Warmed:Stopped"
                instance.ec2_state = "stopped"
            self._changed()

        self._later(self.rng.uniform(15, 60), settled)


class SimRoutes:
    """The KeyValueStore: host id → origin (`RouteTable`)."""

    def __init__(self) -> None:
        self.table: dict[str, str] = {}
        self.version = 0

    def entries(self) -> dict[str, str]:
        return dict(self.table)

    def put(self, host_id: str, origin: str) -> None:
        self.table[host_id] = origin
        self.version += 1

    def delete(self, host_id: str) -> None:
        self.table.pop(host_id, None)
        self.version += 1
