"""What reconcile decides on: the fleet record (with the routes written), the host records and
the group as Auto Scaling describes it — all read at one moment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from lambdas.domain.fleet import Ec2State, GroupInstance, GroupView
from lambdas.domain.host_record import FleetRecord, HostRecord

Phase = Literal["stopped", "starting", "booting", "ready", "stopping", "error"]


@dataclass(frozen=True)
class Snapshot:
    fleet: FleetRecord
    group: GroupView
    hosts: Mapping[str, HostRecord] = field(default_factory=dict)
    """host id → record, for every instance of the group and every open run."""

    def host(self, host_id: str) -> HostRecord:
        return self.hosts.get(host_id) or HostRecord(host_id=host_id)

    def instance(self, host_id: str) -> GroupInstance | None:
        return self.group.get(host_id)


__all__ = ["Ec2State", "Phase", "Snapshot"]
