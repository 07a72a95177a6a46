"""What reconcile decides on: the host record (`lambdas.domain.host_record`), the EC2 view of
the instance, and both together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lambdas.domain.host_record import HostRecord

Ec2State = Literal["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]
Phase = Literal["stopped", "starting", "booting", "ready", "stopping", "error"]


@dataclass(frozen=True)
class InstanceView:
    """What EC2 says about the instance right now."""

    instance_id: str
    state: Ec2State
    instance_type: str
    launch_time: float | None = None
    zone: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything `decide` looks at. `instance` is None when EC2 does not know the id."""

    host: HostRecord
    instance: InstanceView | None
