"""The GPU fleet for the local mode and the tests: an Auto Scaling group with a warm pool.

moto stores a group's configuration (launch template, sizes, warm pool, lifecycle hook) and
answers `DescribeAutoScalingGroups` with it, but it emulates neither a warm pool nor lifecycle
hooks, and its own `SetDesiredCapacity` launches and terminates instances by itself. So the
configuration lives in moto, exactly as `cdk deploy` would create it, and `EmulatedFleet` owns
what moto cannot: the desired capacity, instance protection, and each instance's lifecycle
state, which follows AWS's documented warm pool lifecycle
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html):

- filling the pool: new instance → `Warmed:Pending` → `Warmed:Pending:Wait` (the launch hook:
  the host initializes, then completes the action) → `Warmed:Pending:Proceed` → EC2 stopped →
  `Warmed:Stopped`;
- scale out: a `Warmed:Stopped` instance is started → `Pending` → `Pending:Wait` (the hook
  again: the host starts its stack and completes once ready) → `Pending:Proceed` →
  `InService`; with no warmed instance, a fresh one launches straight into `Pending` (and
  pauses only at `Pending:Wait`);
- scale in: an `InService` instance not protected from scale-in leaves — back to the pool
  (`Warmed:Pending` → stopped → `Warmed:Stopped`) when the pool's `ReuseOnScaleIn` is set, else
  `Terminating` → `Terminated`. The launch hook does not pause a returning instance: only a
  termination hook would (same page).

The instances are real moto EC2 instances, started, stopped and terminated through the EC2
API, so `DescribeInstances` (and the control plane's EC2 view) sees them as in AWS.

The host side is what a real host reaches through instance metadata and the Auto Scaling API:
`target_lifecycle_state` (IMDS `autoscaling/target-lifecycle-state`,
https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html),
`complete_lifecycle_action`, `record_heartbeat`, and `hosts()`: every running instance with
its boot number and slot, the local stand-ins for a boot id and a public address.

Transitions happen whenever the emulator is called (or on `step()`), deterministically for
a given clock.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from botocore.exceptions import ClientError

from lambdas.aws.fleet import FAILURES_KEPT
from lambdas.domain.fleet import LAUNCHING, SERVING, GroupInstance, GroupView, ScalingFailure

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef, TagTypeDef

log = logging.getLogger(__name__)

LifecycleResult = Literal["CONTINUE", "ABANDON"]

GROUP_TAG: Final = "aws:autoscaling:groupName"
"""The tag Auto Scaling puts on every instance it launches (IAM is scoped by it in AWS)."""
LAUNCH_TRANSITION: Final = "autoscaling:EC2_INSTANCE_LAUNCHING"
HOOK_NAME: Final = "spinup-host-launch"
DEFAULT_HEARTBEAT_TIMEOUT_S: Final = 600
"""The launch hook's heartbeat timeout here: a CPU Triton loads in well under this. AWS allows
30-7200 s (PutLifecycleHook)."""
MAX_GLOBAL_TIMEOUT_S: Final = 172_800
"""A wait lasts at most 48 h or 100 heartbeat timeouts, whichever is smaller, heartbeats or not
(the LifecycleHook's GlobalTimeout)."""
LAUNCH_RETRY_S: Final = 10.0
"""After a failed launch, the next attempt (Auto Scaling retries a failed scale-out by itself)."""
EVENTS_KEPT: Final = 256
"""EC2 state changes kept until `drain_ec2_events` takes them; past that the oldest go. Any
one event makes reconcile read the whole fleet, so a dropped one loses nothing the next does
not carry."""
RETIRED_KEPT: Final = 64
"""Histories of instances that are gone, for `history` (tests, logs)."""

WAITS: Final = frozenset({"Pending:Wait", "Warmed:Pending:Wait"})
WARM_KEPT: Final = frozenset(
    {
        "Warmed:Pending",
        "Warmed:Pending:Wait",
        "Warmed:Pending:Proceed",
        "Warmed:Stopped",
        "Warmed:Running",
        "Warmed:Hibernated",
    }
)
"""Counted in the warm pool's size."""
WARM_READY: Final = frozenset({"Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated"})
"""Warmed instances a scale-out can take (initialized, lifecycle action complete)."""
GONE: Final = frozenset({"Terminated", "Warmed:Terminated"})


def capacity_message(instance_type: str, zone: str, others: Iterable[str]) -> str:
    """The message Auto Scaling's failed activity carries when EC2 has no capacity
    (InsufficientInstanceCapacity), as AWS words it."""
    alternatives = ", ".join(z for z in others if z != zone) or "another Availability Zone"
    return (
        f"We currently do not have sufficient {instance_type} capacity in the Availability "
        f"Zone you requested ({zone}). Our system will be working on provisioning additional "
        f"capacity. You can currently get {instance_type} capacity by not specifying an "
        f"Availability Zone in your request or choosing {alternatives}. "
        "Launching EC2 instance failed."
    )


def _error(operation: str, message: str, code: str = "ValidationError") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@dataclass(frozen=True)
class HostMetadata:
    """What a running host reads about itself (the local stand-in for its instance metadata)."""

    instance_id: str
    target_lifecycle_state: str
    boot: int
    """Which EC2 start of the instance this is: a new number is a new boot, even when the
    stop before it was over before anyone looked."""
    slot: int
    """The instance's local address: slot i is its own set of ports (`infra.local.ports`)."""


@dataclass(frozen=True)
class Ec2StateChange:
    """What EC2 would send to EventBridge ("EC2 Instance State-change Notification")."""

    instance_id: str
    state: str
    at: float


@dataclass(frozen=True)
class GroupConfig:
    """The group's configuration as moto stores it (read back on every step)."""

    min_size: int
    max_size: int
    zones: tuple[str, ...]
    protect_new: bool
    tags: tuple[tuple[str, str], ...]
    launch_template: str
    pool_min_size: int | None
    """None: the group has no warm pool."""
    pool_max_prepared: int | None
    pool_state: str
    reuse_on_scale_in: bool
    hook_timeout_s: int | None
    """None: no launch lifecycle hook (instances do not pause)."""
    hook_global_timeout_s: int
    hook_default_result: LifecycleResult

    @property
    def warmed(self) -> str:
        """The warm pool's steady state: `Warmed:Stopped` for `PoolState: Stopped`."""
        return f"Warmed:{self.pool_state}"

    def pool_size(self, desired: int) -> int:
        """How many instances the pool keeps: MaxGroupPreparedCapacity (the group's max size
        when unset) minus the desired capacity, and at least the pool's MinSize
        (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutWarmPool.html)."""
        if self.pool_min_size is None:
            return 0
        prepared = self.max_size if self.pool_max_prepared is None else self.pool_max_prepared
        return max(self.pool_min_size, prepared - desired)


@dataclass
class _Member:
    instance_id: str
    zone: str
    state: str
    history: list[str]
    protected: bool = False
    boot: int = 0
    slot: int | None = None
    started_at: float | None = None
    wait_deadline: float = 0.0
    wait_limit: float = 0.0

    @property
    def warm(self) -> bool:
        return self.state.startswith("Warmed:")


@dataclass
class _Faults:
    launch_failure: str | None = None
    """Set: every launch fails with this message (None: build the AWS-like one)."""
    failing: bool = False
    next_calls: dict[str, tuple[str, str]] = field(default_factory=dict)


class EmulatedFleet:
    """`lambdas.aws.fleet.FleetGateway` over moto, with the warm pool and the launch hook
    emulated. Thread-safe: the control API, reconcile and the host agent call it at once."""

    def __init__(
        self,
        *,
        autoscaling: AutoScalingClient,
        ec2: EC2Client,
        group_name: str,
        origin_of_slot: Callable[[int], str],
        clock: Callable[[], float] = time.time,
        launch_retry_s: float = LAUNCH_RETRY_S,
    ) -> None:
        self._autoscaling = autoscaling
        self._ec2 = ec2
        self.group_name = group_name
        self._origin_of_slot = origin_of_slot
        self._clock = clock
        self._launch_retry_s = launch_retry_s
        self._lock = threading.RLock()
        self._members: dict[str, _Member] = {}
        self._retired: collections.OrderedDict[str, list[str]] = collections.OrderedDict()
        self._desired = 0
        self._next_launch_at = float("-inf")
        self._failures: collections.deque[ScalingFailure] = collections.deque(maxlen=FAILURES_KEPT)
        self._events: collections.deque[Ec2StateChange] = collections.deque(maxlen=EVENTS_KEPT)
        self._faults = _Faults()
        self._instance_type = self._template_instance_type()

    # ---- creating the group in moto ------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        autoscaling: AutoScalingClient,
        ec2: EC2Client,
        group_name: str,
        image_id: str,
        instance_type: str,
        max_size: int,
        warm_pool_size: int,
        origin_of_slot: Callable[[int], str],
        heartbeat_timeout_s: int = DEFAULT_HEARTBEAT_TIMEOUT_S,
        zones: int = 2,
        clock: Callable[[], float] = time.time,
        launch_retry_s: float = LAUNCH_RETRY_S,
    ) -> EmulatedFleet:
        """The group as the deployment defines it, created in moto: a launch template, the
        group (min 0, max `max_size`, desired 0, new instances protected from scale-in, in
        `zones` Availability Zones, AZ rebalancing suspended), a warm pool of exactly
        `warm_pool_size` stopped instances reused on scale-in, and the launch hook."""
        template = f"{group_name}-template"
        # The type is a plain string here (the settings'); botocore's stubs want a literal.
        data: Any = {"ImageId": image_id, "InstanceType": instance_type}
        ec2.create_launch_template(LaunchTemplateName=template, LaunchTemplateData=data)
        names = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=group_name,
            LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
            MinSize=0,
            MaxSize=max_size,
            DesiredCapacity=0,
            AvailabilityZones=sorted(names)[:zones],
            NewInstancesProtectedFromScaleIn=True,
            Tags=[{"Key": "Name", "Value": group_name, "PropagateAtLaunch": True}],
        )
        # Nothing may terminate a busy host to even out the zones.
        autoscaling.suspend_processes(
            AutoScalingGroupName=group_name, ScalingProcesses=["AZRebalance"]
        )
        autoscaling.put_warm_pool(
            AutoScalingGroupName=group_name,
            MinSize=warm_pool_size,
            MaxGroupPreparedCapacity=warm_pool_size,
            PoolState="Stopped",
            InstanceReusePolicy={"ReuseOnScaleIn": True},
        )
        autoscaling.put_lifecycle_hook(
            AutoScalingGroupName=group_name,
            LifecycleHookName=HOOK_NAME,
            LifecycleTransition=LAUNCH_TRANSITION,
            HeartbeatTimeout=heartbeat_timeout_s,
            DefaultResult="ABANDON",
        )
        return cls(
            autoscaling=autoscaling,
            ec2=ec2,
            group_name=group_name,
            origin_of_slot=origin_of_slot,
            clock=clock,
            launch_retry_s=launch_retry_s,
        )

    # ---- FleetGateway ----------------------------------------------------------------------

    def describe(self) -> GroupView:
        with self._lock:
            config = self._advance()
            ec2_states = self._ec2_states(self._members)
            instances = tuple(
                self._view(m, ec2_states.get(m.instance_id)) for m in self._members.values()
            )
            return GroupView(
                name=self.group_name,
                desired_capacity=self._desired,
                min_size=config.min_size,
                max_size=config.max_size,
                instances=instances,
                failures=tuple(self._failures),
            )

    def set_desired_capacity(self, capacity: int) -> None:
        with self._lock:
            self._injected("SetDesiredCapacity")
            config = self._config()
            if capacity > config.max_size:
                raise _error(
                    "SetDesiredCapacity",
                    f"New SetDesiredCapacity value {capacity} is above max value "
                    f"{config.max_size} for the AutoScalingGroup.",
                )
            if capacity < config.min_size:
                raise _error(
                    "SetDesiredCapacity",
                    f"New SetDesiredCapacity value {capacity} is below min value "
                    f"{config.min_size} for the AutoScalingGroup.",
                )
            if capacity != self._desired:
                log.info("desired capacity %d -> %d", self._desired, capacity)
                # A new scaling activity: it launches at once, not after the last one's retry
                # interval (the same capacity again changes nothing, as in AWS).
                self._next_launch_at = float("-inf")
            self._desired = capacity
            self._advance(config)

    def set_protection(self, instance_id: str, *, protected: bool) -> None:
        with self._lock:
            self._injected("SetInstanceProtection")
            member = self._members.get(instance_id)
            if member is None or member.warm:
                raise _error(
                    "SetInstanceProtection",
                    f"The instance {instance_id} is not part of Auto Scaling group "
                    f"{self.group_name}.",
                )
            member.protected = protected
            self._advance()

    def replace(self, instance_id: str) -> None:
        with self._lock:
            self._injected("TerminateInstanceInAutoScalingGroup")
            config = self._config()
            member = self._members.get(instance_id)
            if member is None:
                raise _error(
                    "TerminateInstanceInAutoScalingGroup",
                    f"Instance Id not found - No managed instance found for instance ID: "
                    f"{instance_id}",
                )
            log.info("replacing %s (%s)", instance_id, member.state)
            self._terminate(member)
            self._advance(config)

    # ---- the host side -------------------------------------------------------------------

    def hosts(self) -> tuple[HostMetadata, ...]:
        """Every instance EC2 runs now, as its host sees itself."""
        with self._lock:
            config = self._advance()
            return tuple(
                HostMetadata(m.instance_id, self._target(m, config), m.boot, m.slot)
                for m in self._members.values()
                if m.slot is not None
            )

    def target_lifecycle_state(self, instance_id: str) -> str | None:
        """IMDS `autoscaling/target-lifecycle-state`: the steady state the instance is on its
        way to (`InService`, `Warmed:Stopped`, `Terminated`, ...); None for no such instance."""
        with self._lock:
            config = self._advance()
            member = self._members.get(instance_id)
            return None if member is None else self._target(member, config)

    def complete_lifecycle_action(self, instance_id: str, result: LifecycleResult) -> None:
        """CompleteLifecycleAction for the launch hook. Raises ValidationError (as AWS does)
        when the instance has no action waiting."""
        with self._lock:
            config = self._advance()
            member = self._waiting(instance_id, "CompleteLifecycleAction")
            log.info("%s: lifecycle action %s in %s", instance_id, result, member.state)
            self._complete(member, result, config)
            self._advance(config)

    def record_heartbeat(self, instance_id: str) -> None:
        """RecordLifecycleActionHeartbeat: the wait lasts another heartbeat timeout (never past
        the hook's global timeout)."""
        with self._lock:
            config = self._advance()
            member = self._waiting(instance_id, "RecordLifecycleActionHeartbeat")
            timeout = config.hook_timeout_s or 0
            member.wait_deadline = min(self._clock() + timeout, member.wait_limit)

    def drain_ec2_events(self) -> list[Ec2StateChange]:
        """The EC2 state changes since the last call, oldest first."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events

    # ---- for tests -------------------------------------------------------------------------

    def step(self) -> None:
        """Carry out whatever is due now (also done by every other call)."""
        with self._lock:
            self._advance()

    def history(self, instance_id: str) -> list[str]:
        """Every lifecycle state the instance has been in, oldest first."""
        with self._lock:
            member = self._members.get(instance_id)
            return list(member.history if member else self._retired.get(instance_id, []))

    def fail_launches(self, message: str | None = None) -> None:
        """From now on every launch fails for lack of capacity, recorded as a failed scaling
        activity with `message` (by default AWS's InsufficientInstanceCapacity wording)."""
        with self._lock:
            self._faults.failing = True
            self._faults.launch_failure = message

    def allow_launches(self) -> None:
        with self._lock:
            self._faults.failing = False
            self._next_launch_at = float("-inf")

    def fail_next(self, operation: str, code: str, message: str = "") -> None:
        """The next call of `operation` (the Auto Scaling API's name: `SetDesiredCapacity`,
        `SetInstanceProtection`, `TerminateInstanceInAutoScalingGroup`) raises a ClientError
        with `code` (e.g. ScalingActivityInProgress), changing nothing."""
        with self._lock:
            self._faults.next_calls[operation] = (code, message or f"injected {code}")

    # ---- the state machine -----------------------------------------------------------------

    def _advance(self, config: GroupConfig | None = None) -> GroupConfig:
        """Everything due now: lapsed waits, the group's capacity, the warm pool's size."""
        config = config or self._config()
        now = self._clock()
        for member in list(self._members.values()):
            if member.state in WAITS and now >= member.wait_deadline:
                log.warning(
                    "%s: lifecycle action timed out in %s; default result %s",
                    member.instance_id,
                    member.state,
                    config.hook_default_result,
                )
                self._complete(member, config.hook_default_result, config)
        self._scale(config, now)
        self._fill_pool(config, now)
        return config

    def _scale(self, config: GroupConfig, now: float) -> None:
        serving = [m for m in self._members.values() if m.state in SERVING]
        if len(serving) > self._desired:
            # All protected: nothing leaves, as in AWS; the group stays above its desired
            # capacity until one is unprotected.
            candidates = [m for m in serving if not m.protected]
            for member in candidates[: len(serving) - self._desired]:
                self._scale_in(member, config)
            return
        for _ in range(self._desired - len(serving)):
            warm = next((m for m in self._members.values() if m.state in WARM_READY), None)
            if warm is not None:
                self._start_from_pool(warm, config)
            elif not self._launch(config, now, into_pool=False):
                return

    def _fill_pool(self, config: GroupConfig, now: float) -> None:
        size = config.pool_size(self._desired)
        warm = [m for m in self._members.values() if m.state in WARM_KEPT]
        for _ in range(size - len(warm)):
            if not self._launch(config, now, into_pool=True):
                return
        excess = len(warm) - size
        ready = [m for m in warm if m.state in WARM_READY]
        if excess > 0 and len(ready) == len(warm):
            # Over its size (a host came back on scale-in): once none is still warming up,
            # the newest warmed ones go; the host that came back has served already.
            for member in ready[-excess:]:
                log.info("%s: the warm pool is over its size (%d)", member.instance_id, size)
                self._terminate(member)

    def _launch(self, config: GroupConfig, now: float, *, into_pool: bool) -> bool:
        """A new instance, into the pool or the group; False when the launch failed."""
        if now < self._next_launch_at:
            return False
        zone = self._least_used_zone(config)
        where = "into the warm pool" if into_pool else "into the group"
        if self._faults.failing:
            message = self._faults.launch_failure or capacity_message(
                self._instance_type, zone, config.zones
            )
            log.warning("launching a new EC2 instance %s failed: %s", where, message)
            self._failures.appendleft(ScalingFailure(at=now, message=message))
            self._next_launch_at = now + self._launch_retry_s
            return False
        tags: list[TagTypeDef] = [{"Key": GROUP_TAG, "Value": self.group_name}]
        tags += [{"Key": key, "Value": value} for key, value in config.tags]
        spec: TagSpecificationTypeDef = {"ResourceType": "instance", "Tags": tags}
        reservation = self._ec2.run_instances(
            LaunchTemplate={"LaunchTemplateName": config.launch_template, "Version": "$Latest"},
            MinCount=1,
            MaxCount=1,
            Placement={"AvailabilityZone": zone},
            TagSpecifications=[spec],
        )
        instance_id = reservation["Instances"][0]["InstanceId"]
        member = _Member(instance_id=instance_id, zone=zone, state="", history=[])
        self._members[instance_id] = member
        log.info("launched %s in %s, %s", instance_id, zone, where)
        self._started(member)
        if into_pool:
            self._move(member, "Warmed:Pending")
            self._hook_or(member, config, "Warmed:Pending:Wait", self._to_pool)
        else:
            self._enter_group(member, config)
        return True

    def _start_from_pool(self, member: _Member, config: GroupConfig) -> None:
        log.info("%s leaves the warm pool", member.instance_id)
        if member.slot is None:
            self._ec2.start_instances(InstanceIds=[member.instance_id])
            self._started(member)
        self._enter_group(member, config)

    def _enter_group(self, member: _Member, config: GroupConfig) -> None:
        # NewInstancesProtectedFromScaleIn applies to each instance entering the group, so a
        # host back from the pool is protected again until the control plane says otherwise.
        member.protected = config.protect_new
        self._move(member, "Pending")
        self._hook_or(member, config, "Pending:Wait", self._to_service)

    def _hook_or(
        self,
        member: _Member,
        config: GroupConfig,
        wait: str,
        proceed: Callable[[_Member, GroupConfig], None],
    ) -> None:
        """Pause at `wait` for the launch hook, or go on at once when there is none."""
        if config.hook_timeout_s is None:
            proceed(member, config)
            return
        now = self._clock()
        member.wait_deadline = now + config.hook_timeout_s
        member.wait_limit = now + config.hook_global_timeout_s
        self._move(member, wait)

    def _complete(self, member: _Member, result: LifecycleResult, config: GroupConfig) -> None:
        warm = member.warm
        if result == "CONTINUE":
            self._move(member, "Warmed:Pending:Proceed" if warm else "Pending:Proceed")
            (self._to_pool if warm else self._to_service)(member, config)
        else:
            self._terminate(member)

    def _to_pool(self, member: _Member, config: GroupConfig) -> None:
        if config.pool_state != "Running" and member.slot is not None:
            self._ec2.stop_instances(InstanceIds=[member.instance_id])
            self._stopped(member, "stopping", "stopped")
        self._move(member, config.warmed)

    def _to_service(self, member: _Member, config: GroupConfig) -> None:
        self._move(member, "InService")

    def _scale_in(self, member: _Member, config: GroupConfig) -> None:
        if config.pool_min_size is not None and config.reuse_on_scale_in:
            log.info("%s: scale in, back to the warm pool", member.instance_id)
            self._move(member, "Warmed:Pending")
            self._to_pool(member, config)
        else:
            log.info("%s: scale in, terminating", member.instance_id)
            self._terminate(member)

    def _terminate(self, member: _Member) -> None:
        prefix = "Warmed:" if member.warm else ""
        self._move(member, f"{prefix}Terminating")
        self._ec2.terminate_instances(InstanceIds=[member.instance_id])
        self._stopped(member, "shutting-down", "terminated")
        self._move(member, f"{prefix}Terminated")
        del self._members[member.instance_id]
        self._retired[member.instance_id] = member.history
        while len(self._retired) > RETIRED_KEPT:
            self._retired.popitem(last=False)

    # ---- bookkeeping -----------------------------------------------------------------------

    def _move(self, member: _Member, state: str) -> None:
        member.state = state
        member.history.append(state)

    def _started(self, member: _Member) -> None:
        """EC2 runs the instance: a new boot, on the lowest free slot."""
        taken = {m.slot for m in self._members.values()}
        member.slot = next(slot for slot in range(len(taken) + 1) if slot not in taken)
        member.boot += 1
        member.started_at = self._clock()
        self._event(member, "pending", "running")

    def _stopped(self, member: _Member, *states: str) -> None:
        member.slot = None
        self._event(member, *states)

    def _event(self, member: _Member, *states: str) -> None:
        now = self._clock()
        self._events.extend(Ec2StateChange(member.instance_id, state, now) for state in states)

    def _least_used_zone(self, config: GroupConfig) -> str:
        """Auto Scaling keeps the zones balanced as it launches."""
        used = collections.Counter(m.zone for m in self._members.values())
        return min(config.zones, key=lambda zone: (used[zone], config.zones.index(zone)))

    def _target(self, member: _Member, config: GroupConfig) -> str:
        state = member.state
        if state.startswith("Warmed:Terminat"):
            return "Warmed:Terminated"
        if state.startswith("Warmed:"):
            return config.warmed
        if state in LAUNCHING or state == "InService":
            return "InService"
        return "Terminated"

    def _waiting(self, instance_id: str, operation: str) -> _Member:
        member = self._members.get(instance_id)
        if member is None or member.state not in WAITS:
            raise _error(
                operation, f"No active Lifecycle Action found with instance ID {instance_id}"
            )
        return member

    def _injected(self, operation: str) -> None:
        fault = self._faults.next_calls.pop(operation, None)
        if fault is not None:
            raise _error(operation, fault[1], code=fault[0])

    def _view(self, member: _Member, ec2: dict[str, Any] | None) -> GroupInstance:
        ec2_state = (ec2 or {}).get("State", {}).get("Name")
        slot = member.slot if ec2_state == "running" else None
        return GroupInstance(
            instance_id=member.instance_id,
            lifecycle_state=member.state,
            instance_type=(ec2 or {}).get("InstanceType", self._instance_type),
            ec2_state=ec2_state,
            zone=member.zone,
            launch_time=member.started_at,
            public_dns="" if slot is None else self._origin_of_slot(slot),
            protected=member.protected,
        )

    # ---- moto ------------------------------------------------------------------------------

    def _config(self) -> GroupConfig:
        groups = self._autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.group_name]
        )["AutoScalingGroups"]
        if not groups:
            raise LookupError(f"no Auto Scaling group {self.group_name}")
        group = groups[0]
        pool = group.get("WarmPoolConfiguration")
        hooks = self._autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=self.group_name)
        launch_hook = next(
            (
                h
                for h in hooks.get("LifecycleHooks", [])
                if h.get("LifecycleTransition") == LAUNCH_TRANSITION
            ),
            None,
        )
        timeout = int(launch_hook.get("HeartbeatTimeout", 3600)) if launch_hook else None
        default: LifecycleResult = (
            "CONTINUE"
            if launch_hook and launch_hook.get("DefaultResult") == "CONTINUE"
            else "ABANDON"
        )
        prepared = pool.get("MaxGroupPreparedCapacity") if pool else None
        return GroupConfig(
            min_size=int(group["MinSize"]),
            max_size=int(group["MaxSize"]),
            zones=tuple(group.get("AvailabilityZones", [])),
            protect_new=bool(group.get("NewInstancesProtectedFromScaleIn", False)),
            tags=tuple(
                (t["Key"], t["Value"]) for t in group.get("Tags", []) if t.get("PropagateAtLaunch")
            ),
            launch_template=group["LaunchTemplate"]["LaunchTemplateName"],
            pool_min_size=int(pool.get("MinSize", 0)) if pool else None,
            pool_max_prepared=None if prepared is None or prepared < 0 else int(prepared),
            pool_state=str(pool.get("PoolState", "Stopped")) if pool else "Stopped",
            reuse_on_scale_in=bool(
                pool and pool.get("InstanceReusePolicy", {}).get("ReuseOnScaleIn")
            ),
            hook_timeout_s=timeout,
            hook_global_timeout_s=min(MAX_GLOBAL_TIMEOUT_S, 100 * (timeout or 0)),
            hook_default_result=default,
        )

    def _template_instance_type(self) -> str:
        groups = self._autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.group_name]
        )["AutoScalingGroups"]
        if not groups:
            raise LookupError(f"no Auto Scaling group {self.group_name}")
        template = groups[0]["LaunchTemplate"]["LaunchTemplateName"]
        versions = self._ec2.describe_launch_template_versions(
            LaunchTemplateName=template, Versions=["$Latest"]
        )["LaunchTemplateVersions"]
        return str(versions[0]["LaunchTemplateData"].get("InstanceType", ""))

    def _ec2_states(self, members: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = sorted(members)
        if not ids:
            return {}
        answer = self._ec2.describe_instances(InstanceIds=ids)
        return {
            i["InstanceId"]: dict(i)
            for r in answer.get("Reservations", [])
            for i in r.get("Instances", [])
        }
