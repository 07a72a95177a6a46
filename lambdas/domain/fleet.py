"""What EC2 Auto Scaling says about the fleet: the group, its instances and their lifecycle.

Pure data, read by `lambdas.aws.fleet` (AWS) or `infra.local.fleet` (the local emulation) and
decided on by `lambdas.domain.decide`. The lifecycle states are AWS's own names
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html and, for
the warm pool, https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Ec2State = Literal["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]

LifecycleState = Literal[
    "Pending",
    "Pending:Wait",
    "Pending:Proceed",
    "InService",
    "Terminating",
    "Terminating:Wait",
    "Terminating:Proceed",
    "Terminated",
    "Detaching",
    "Detached",
    "EnteringStandby",
    "Standby",
    "Warmed:Pending",
    "Warmed:Pending:Wait",
    "Warmed:Pending:Proceed",
    "Warmed:Terminating",
    "Warmed:Terminating:Wait",
    "Warmed:Terminating:Proceed",
    "Warmed:Terminated",
    "Warmed:Stopped",
    "Warmed:Running",
    "Warmed:Hibernated",
]

LAUNCHING: Final[frozenset[str]] = frozenset({"Pending", "Pending:Wait", "Pending:Proceed"})
"""On its way into service: a scale-out the group is carrying out (the launch hook holds an
instance in `Pending:Wait` until the host completes the action)."""

SERVING: Final[frozenset[str]] = LAUNCHING | {"InService"}
"""Counted in the group's capacity: what the control plane places sessions on."""

LEAVING: Final[frozenset[str]] = frozenset(
    {"Terminating", "Terminating:Wait", "Terminating:Proceed", "Detaching"}
)


@dataclass(frozen=True)
class GroupInstance:
    """One instance of the group (in service, launching, leaving or in the warm pool)."""

    instance_id: str
    lifecycle_state: str
    """One of `LifecycleState` (kept a string: a state AWS adds later must not break a read)."""
    instance_type: str
    ec2_state: Ec2State | None = None
    """EC2's view; None when EC2 did not answer for it (just launched, or already gone)."""
    zone: str | None = None
    launch_time: float | None = None
    public_dns: str = ""
    """The origin CloudFront connects to; empty until the instance runs with a public address."""
    protected: bool = False
    """Protected from scale-in: the group never picks it when the desired capacity drops."""

    @property
    def warm(self) -> bool:
        return self.lifecycle_state.startswith("Warmed:")

    @property
    def serving(self) -> bool:
        return self.lifecycle_state in SERVING

    @property
    def running(self) -> bool:
        return self.serving and self.ec2_state == "running"


@dataclass(frozen=True)
class ScalingFailure:
    """A scaling activity that failed (e.g. no capacity for any of the group's types)."""

    at: float
    message: str


@dataclass(frozen=True)
class GroupView:
    """The group as Auto Scaling describes it now."""

    name: str
    desired_capacity: int
    min_size: int
    max_size: int
    instances: tuple[GroupInstance, ...] = ()
    """Every instance of the group, the warm pool's included."""
    failures: tuple[ScalingFailure, ...] = ()
    """Recent failed scaling activities, newest first."""

    @property
    def serving(self) -> tuple[GroupInstance, ...]:
        return tuple(i for i in self.instances if i.serving)

    @property
    def warm(self) -> tuple[GroupInstance, ...]:
        return tuple(i for i in self.instances if i.warm)

    def get(self, instance_id: str) -> GroupInstance | None:
        return next((i for i in self.instances if i.instance_id == instance_id), None)
