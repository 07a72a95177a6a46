"""What `decide` returns: guarded changes of the host record, and the EC2 calls that follow them.

Every change is a compare-and-set: `expect` names the values read when deciding, and the store
applies `changes` only if they still hold (a DynamoDB conditional write). That is how many
Lambda processes deciding at once end up with one StartInstances, and how a start request or
heartbeat that lands between a stop decision and the stop wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from lambdas.domain.host_record import HostRecord

Value = str | int | float | bool | None | Mapping[str, object] | tuple[float, ...]


class Ec2Call(StrEnum):
    START = "start"
    """StartInstances, walking the instance-type fallback list on InsufficientInstanceCapacity."""
    STOP = "stop"


@dataclass(frozen=True)
class Transition:
    """Apply `changes` to the host record if every `expect` still holds, then make `then`."""

    name: str
    expect: Mapping[str, Value]
    """Field → value read when deciding; None means the attribute must be absent."""
    changes: Mapping[str, Value]
    """Field → new value; None removes the attribute."""
    then: Ec2Call | None = None

    def __post_init__(self) -> None:
        unknown = (set(self.expect) | set(self.changes)) - set(HostRecord.model_fields)
        if unknown:
            raise ValueError(f"{self.name}: not host record fields: {sorted(unknown)}")


@dataclass(frozen=True)
class RetryStop:
    """StopInstances again, without a record change: a stop was decided and written, and the
    instance still runs (the call failed, or the instance was still pending)."""

    name: str = field(default="retry_stop", init=False)


Action = Transition | RetryStop
