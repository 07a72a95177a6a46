"""What `decide` returns: guarded changes of the records, and the fleet calls that follow them.

Every change is a compare-and-set: an `Update` names the values read when deciding, and the store
applies it only if they still hold (a DynamoDB conditional write). A `Transition` of several
updates is applied atomically (one transaction) or not at all. That is how many Lambda
processes deciding at once end up with one capacity change, and how a placement, keepalive or
heartbeat that lands between a stop decision and the stop wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel

from lambdas.domain.host_record import FLEET_KEY, HOST_PREFIX, FleetRecord, HostRecord

Value = str | int | float | bool | None | Mapping[str, object] | tuple[float, ...]
Path = tuple[str, ...]
"""A field, or a path into a map field: ("sessions", user, session_id, "host_id")."""


@dataclass(frozen=True)
class Update:
    """One conditional update of one record (the fleet record or a host record)."""

    key: str
    expect: Mapping[str, Value] = field(default_factory=dict)
    """Field → value read when deciding; None means the attribute must be absent."""
    present: tuple[Path, ...] = ()
    """Paths that must exist (a lease still there)."""
    absent: tuple[Path, ...] = ()
    smaller: tuple[tuple[Path, int], ...] = ()
    """(path, n): the map at path must hold fewer than n entries."""
    set: Mapping[Path, Value] = field(default_factory=dict)
    """Path → new value; None removes it."""
    add: Mapping[str, int] = field(default_factory=dict)
    """Number fields incremented in place (the generation)."""

    def __post_init__(self) -> None:
        model: type[BaseModel] = FleetRecord if self.key == FLEET_KEY else HostRecord
        if self.key != FLEET_KEY and not self.key.startswith(HOST_PREFIX):
            raise ValueError(f"not a record of the control table: {self.key}")
        fields = (
            set(self.expect)
            | set(self.add)
            | {p[0] for p in (*self.present, *self.absent, *self.set)}
            | {p[0] for p, _ in self.smaller}
        )
        unknown = fields - set(model.model_fields)
        if unknown:
            raise ValueError(f"{self.key}: not fields of {model.__name__}: {sorted(unknown)}")

    @property
    def changes_something(self) -> bool:
        """False: a condition check only (part of a transaction that writes elsewhere)."""
        return bool(self.set or self.add)


def fields(changes: Mapping[str, Value]) -> dict[Path, Value]:
    """Top-level field changes as paths."""
    return {(name,): value for name, value in changes.items()}


@dataclass(frozen=True)
class SetDesired:
    """The group's desired capacity (idempotent; the next reconcile converges on failure)."""

    capacity: int


@dataclass(frozen=True)
class Protect:
    """Protect (or unprotect) one instance from scale-in."""

    host_id: str
    protected: bool


@dataclass(frozen=True)
class Replace:
    """Terminate one instance without lowering the desired capacity; the group replaces it."""

    host_id: str


@dataclass(frozen=True)
class PutRoute:
    host_id: str
    origin: str


@dataclass(frozen=True)
class DeleteRoute:
    host_id: str


Call = SetDesired | Protect | Replace | PutRoute | DeleteRoute


@dataclass(frozen=True)
class Transition:
    """Apply `updates` atomically if every guard still holds, then make the `then` calls."""

    name: str
    updates: tuple[Update, ...]
    then: tuple[Call, ...] = ()

    def __post_init__(self) -> None:
        if not self.updates:
            raise ValueError(f"{self.name}: a transition updates at least one record")
        keys = [update.key for update in self.updates]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.name}: one update per record")
        if not any(update.changes_something for update in self.updates):
            raise ValueError(f"{self.name}: a transition must change something")


@dataclass(frozen=True)
class Converge:
    """Calls without a record change: the records already say what the fleet should be (a
    leave whose capacity change failed, a missing route or protection)."""

    name: str
    calls: tuple[Call, ...]


Action = Transition | Converge


def call_name(call: Call) -> str:
    match call:
        case SetDesired(capacity=n):
            return f"set_desired_capacity({n})"
        case Protect(host_id=host, protected=flag):
            return f"{'protect' if flag else 'unprotect'}({host})"
        case Replace(host_id=host):
            return f"replace({host})"
        case PutRoute(host_id=host):
            return f"put_route({host})"
        case DeleteRoute(host_id=host):
            return f"delete_route({host})"
