"""The emulated Auto Scaling group, pinned to AWS's documented warm pool lifecycle.

https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html: the
launch hook pauses an instance at `Warmed:Pending:Wait` as it enters the pool and again at
`Pending:Wait` when it leaves it; a fresh instance launched into the group (pool empty) pauses
at `Pending:Wait` only; a hook not completed in time gets its default result (ABANDON:
terminated, and replaced). Every case runs against moto's EC2 and Auto Scaling (in process).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from infra.local.fleet import (
    GROUP_TAG,
    HOOK_NAME,
    EmulatedFleet,
    HostMetadata,
    LifecycleResult,
    capacity_message,
)
from tests.unit.local.conftest import HEARTBEAT_S, T0, TYPE, Aws, Clock, origin


def only(fleet: EmulatedFleet, state: str) -> str:
    """The one instance in `state`."""
    found = [i.instance_id for i in fleet.describe().instances if i.lifecycle_state == state]
    assert len(found) == 1, fleet.describe()
    return found[0]


def ec2_state(aws: Aws, instance_id: str) -> str:
    answer = aws.ec2.describe_instances(InstanceIds=[instance_id])
    return str(answer["Reservations"][0]["Instances"][0]["State"]["Name"])


# ---- the documented sequences, one instance followed through a script of calls ----------

Step = Callable[[EmulatedFleet, str, Clock], None]


def complete(result: LifecycleResult) -> Step:
    return lambda fleet, instance, _: fleet.complete_lifecycle_action(instance, result)


def desire(capacity: int) -> Step:
    return lambda fleet, _, __: fleet.set_desired_capacity(capacity)


def unprotect() -> Step:
    return lambda fleet, instance, _: fleet.set_protection(instance, protected=False)


def wait(seconds: float) -> Step:
    def step(fleet: EmulatedFleet, _: str, clock: Clock) -> None:
        clock.now += seconds
        fleet.step()

    return step


def replace() -> Step:
    return lambda fleet, instance, _: fleet.replace(instance)


WARMING = ["Warmed:Pending", "Warmed:Pending:Wait"]
WARMED = [*WARMING, "Warmed:Pending:Proceed", "Warmed:Stopped"]
LEAVING_POOL = ["Pending", "Pending:Wait"]
IN_SERVICE = [*WARMED, *LEAVING_POOL, "Pending:Proceed", "InService"]


@pytest.mark.parametrize(
    ("warm", "script", "history", "ec2", "target"),
    [
        pytest.param(
            1, [], WARMING, "running", "Warmed:Stopped", id="a new instance fills the pool"
        ),
        pytest.param(
            1,
            [complete("CONTINUE")],
            WARMED,
            "stopped",
            "Warmed:Stopped",
            id="initialized: stopped",
        ),
        pytest.param(
            1,
            [complete("CONTINUE"), desire(1)],
            [*WARMED, *LEAVING_POOL],
            "running",
            "InService",
            id="scale out: started from the pool, paused at Pending:Wait",
        ),
        pytest.param(
            1,
            [complete("CONTINUE"), desire(1), complete("CONTINUE")],
            IN_SERVICE,
            "running",
            "InService",
            id="ready: in service",
        ),
        pytest.param(
            0,
            [desire(1)],
            LEAVING_POOL,
            "running",
            "InService",
            id="empty pool: a fresh instance pauses only at Pending:Wait",
        ),
        pytest.param(
            0,
            [desire(1), complete("CONTINUE")],
            [*LEAVING_POOL, "Pending:Proceed", "InService"],
            "running",
            "InService",
            id="empty pool: in service",
        ),
        pytest.param(
            1,
            [complete("CONTINUE"), desire(1), complete("CONTINUE"), unprotect(), desire(0)],
            [*IN_SERVICE, "Warmed:Pending", "Warmed:Stopped"],
            "stopped",
            "Warmed:Stopped",
            id="scale in: back to the pool (ReuseOnScaleIn), no pause",
        ),
        pytest.param(
            1,
            [complete("CONTINUE"), desire(1), complete("CONTINUE"), desire(0)],
            IN_SERVICE,
            "running",
            "InService",
            id="scale in: a protected instance stays",
        ),
        pytest.param(
            1,
            [complete("CONTINUE"), desire(1), complete("CONTINUE"), desire(0), unprotect()],
            [*IN_SERVICE, "Warmed:Pending", "Warmed:Stopped"],
            "stopped",
            "Warmed:Stopped",
            id="scale in: leaves once unprotected",
        ),
        pytest.param(
            1,
            [complete("ABANDON")],
            [*WARMING, "Warmed:Terminating", "Warmed:Terminated"],
            "terminated",
            None,
            id="initialization abandoned: terminated",
        ),
        pytest.param(
            1,
            [complete("CONTINUE"), desire(1), complete("ABANDON")],
            [*WARMED, *LEAVING_POOL, "Terminating", "Terminated"],
            "terminated",
            None,
            id="start abandoned: terminated",
        ),
        pytest.param(
            1,
            [complete("CONTINUE"), desire(1), wait(HEARTBEAT_S - 1)],
            [*WARMED, *LEAVING_POOL],
            "running",
            "InService",
            id="within the heartbeat timeout: still waiting",
        ),
        pytest.param(
            1,
            [complete("CONTINUE"), desire(1), wait(HEARTBEAT_S)],
            [*WARMED, *LEAVING_POOL, "Terminating", "Terminated"],
            "terminated",
            None,
            id="heartbeat timeout: the default result (ABANDON)",
        ),
        pytest.param(
            1,
            [wait(HEARTBEAT_S)],
            [*WARMING, "Warmed:Terminating", "Warmed:Terminated"],
            "terminated",
            None,
            id="heartbeat timeout while initializing",
        ),
        pytest.param(
            1,
            [complete("CONTINUE"), desire(1), complete("CONTINUE"), replace()],
            [*IN_SERVICE, "Terminating", "Terminated"],
            "terminated",
            None,
            id="replace: terminated",
        ),
    ],
)
def test_the_documented_lifecycle(
    aws: Aws,
    warm: int,
    script: list[Step],
    history: list[str],
    ec2: str,
    target: str | None,
) -> None:
    fleet = aws.fleet(warm=warm)
    fleet.step()
    first = fleet.describe().instances[0].instance_id if warm else None
    for step in script:
        if first is None:
            step(fleet, "", aws.clock)
            first = fleet.describe().instances[0].instance_id
        else:
            step(fleet, first, aws.clock)
    assert first is not None
    assert fleet.history(first) == history
    assert ec2_state(aws, first) == ec2
    assert fleet.target_lifecycle_state(first) == target


def test_heartbeats_extend_a_wait_up_to_the_global_timeout(aws: Aws) -> None:
    fleet = aws.fleet(warm=0)
    fleet.set_desired_capacity(1)
    instance = only(fleet, "Pending:Wait")
    for _ in range(99):
        aws.clock.now += HEARTBEAT_S - 1
        fleet.record_heartbeat(instance)
    assert fleet.describe().get(instance) is not None, "each heartbeat extended the wait"
    aws.clock.now = T0 + 100 * HEARTBEAT_S  # GlobalTimeout: 100 heartbeat timeouts
    fleet.step()
    assert fleet.history(instance)[-1] == "Terminated"


@pytest.mark.parametrize(
    "call",
    [
        lambda fleet, instance: fleet.complete_lifecycle_action(instance, "CONTINUE"),
        lambda fleet, instance: fleet.record_heartbeat(instance),
    ],
    ids=["complete", "heartbeat"],
)
def test_no_action_waiting_is_a_validation_error(
    aws: Aws, call: Callable[[EmulatedFleet, str], None]
) -> None:
    fleet = aws.fleet(warm=1)
    instance = only(fleet, "Warmed:Pending:Wait")
    fleet.complete_lifecycle_action(instance, "CONTINUE")
    for unknown in (instance, "i-0000000000000000f"):
        with pytest.raises(ClientError) as raised:
            call(fleet, unknown)
        assert raised.value.response["Error"]["Code"] == "ValidationError"
        assert "No active Lifecycle Action" in raised.value.response["Error"]["Message"]


# ---- the group: capacity, replacement, the pool's size -----------------------------------


def test_abandoned_and_replaced_instances_are_replaced(aws: Aws) -> None:
    """Given two hosts in service, when one is replaced and a launching one abandoned, then the
    desired capacity is unchanged and the group launches new ones in their place."""
    fleet = aws.fleet(max_size=2, warm=0)
    fleet.set_desired_capacity(2)
    first, second = (i.instance_id for i in fleet.describe().instances)
    fleet.complete_lifecycle_action(first, "CONTINUE")
    fleet.replace(first)
    fleet.complete_lifecycle_action(second, "ABANDON")
    view = fleet.describe()
    assert view.desired_capacity == 2
    assert {i.lifecycle_state for i in view.instances} == {"Pending:Wait"}
    assert len(view.instances) == 2
    assert not {first, second} & {i.instance_id for i in view.instances}


def test_scale_out_takes_the_pool_first_then_launches(aws: Aws) -> None:
    fleet = aws.fleet(max_size=2, warm=1)
    warmed = only(fleet, "Warmed:Pending:Wait")
    fleet.complete_lifecycle_action(warmed, "CONTINUE")
    fleet.set_desired_capacity(2)
    view = fleet.describe()
    serving = {i.instance_id: i for i in view.serving}
    assert len(serving) == 2
    assert warmed in serving
    assert all(i.lifecycle_state == "Pending:Wait" and i.protected for i in view.serving)
    fresh = next(i for i in serving if i != warmed)
    assert fleet.history(fresh) == LEAVING_POOL, "launched straight into the group"
    assert len(view.warm) == 1, "the pool is refilled to its size"


def test_the_pool_keeps_its_size_when_a_host_comes_back(aws: Aws) -> None:
    """Given a host in service and a refilled pool, when the host returns on scale-in, then
    the pool is over its size and the newest warmed instance is terminated."""
    fleet = aws.fleet(max_size=1, warm=1)
    host = only(fleet, "Warmed:Pending:Wait")
    fleet.complete_lifecycle_action(host, "CONTINUE")
    fleet.set_desired_capacity(1)
    fleet.complete_lifecycle_action(host, "CONTINUE")
    refill = only(fleet, "Warmed:Pending:Wait")
    fleet.complete_lifecycle_action(refill, "CONTINUE")
    fleet.set_protection(host, protected=False)
    fleet.set_desired_capacity(0)
    assert [i.instance_id for i in fleet.describe().instances] == [host]
    assert fleet.history(refill)[-2:] == ["Warmed:Terminating", "Warmed:Terminated"]


def test_scale_in_picks_only_unprotected_hosts(aws: Aws) -> None:
    fleet = aws.fleet(max_size=2, warm=0)
    fleet.set_desired_capacity(2)
    kept, idle = (i.instance_id for i in fleet.describe().instances)
    for instance in (kept, idle):
        fleet.complete_lifecycle_action(instance, "CONTINUE")
    fleet.set_protection(idle, protected=False)
    fleet.set_desired_capacity(1)
    view = fleet.describe()
    assert [(i.instance_id, i.lifecycle_state) for i in view.serving] == [(kept, "InService")]
    assert fleet.history(idle)[3:5] == ["InService", "Warmed:Pending"]


def test_without_reuse_scale_in_terminates(aws: Aws) -> None:
    fleet = aws.fleet(max_size=1, warm=0)
    aws.autoscaling.put_warm_pool(
        AutoScalingGroupName=aws.group,
        MinSize=0,
        MaxGroupPreparedCapacity=0,
        InstanceReusePolicy={"ReuseOnScaleIn": False},
    )
    fleet.set_desired_capacity(1)
    host = only(fleet, "Pending:Wait")
    fleet.complete_lifecycle_action(host, "CONTINUE")
    fleet.set_protection(host, protected=False)
    fleet.set_desired_capacity(0)
    assert fleet.history(host)[-2:] == ["Terminating", "Terminated"]
    assert fleet.describe().instances == ()


def test_without_a_launch_hook_nothing_pauses(aws: Aws) -> None:
    fleet = aws.fleet(max_size=1, warm=1)
    warmed = only(fleet, "Warmed:Pending:Wait")
    fleet.complete_lifecycle_action(warmed, "CONTINUE")
    aws.autoscaling.delete_lifecycle_hook(
        AutoScalingGroupName=aws.group, LifecycleHookName=HOOK_NAME
    )
    fleet.set_desired_capacity(1)
    assert fleet.history(warmed)[-2:] == ["Pending", "InService"]
    refill = only(fleet, "Warmed:Stopped")
    assert fleet.history(refill) == ["Warmed:Pending", "Warmed:Stopped"]


@pytest.mark.parametrize(("capacity", "word"), [(3, "above max value 2"), (-1, "below min")])
def test_a_desired_capacity_out_of_bounds_is_refused(aws: Aws, capacity: int, word: str) -> None:
    fleet = aws.fleet(max_size=2)
    with pytest.raises(ClientError, match=word):
        fleet.set_desired_capacity(capacity)
    assert fleet.describe().desired_capacity == 0


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("SetDesiredCapacity", lambda fleet, _: fleet.set_desired_capacity(0)),
        ("SetInstanceProtection", lambda fleet, i: fleet.set_protection(i, protected=True)),
        ("TerminateInstanceInAutoScalingGroup", lambda fleet, i: fleet.replace(i)),
    ],
)
def test_an_injected_error_fails_one_call_and_changes_nothing(
    aws: Aws, operation: str, call: Callable[[EmulatedFleet, str], None]
) -> None:
    fleet = aws.fleet(max_size=2, warm=0)
    fleet.set_desired_capacity(1)
    host = only(fleet, "Pending:Wait")
    fleet.set_protection(host, protected=False)
    before = fleet.describe()
    fleet.fail_next(operation, "ScalingActivityInProgress")
    with pytest.raises(ClientError) as raised:
        call(fleet, host)
    assert raised.value.response["Error"]["Code"] == "ScalingActivityInProgress"
    assert fleet.describe() == before
    call(fleet, host)  # the next one goes through


@pytest.mark.parametrize(
    "call",
    [
        lambda fleet: fleet.set_protection("i-0000000000000000f", protected=False),
        lambda fleet: fleet.replace("i-0000000000000000f"),
    ],
    ids=["protection", "replace"],
)
def test_an_unknown_instance_is_a_validation_error(
    aws: Aws, call: Callable[[EmulatedFleet], None]
) -> None:
    with pytest.raises(ClientError) as raised:
        call(aws.fleet())
    assert raised.value.response["Error"]["Code"] == "ValidationError"


# ---- capacity errors ------------------------------------------------------------------


def test_no_capacity_is_a_failed_activity_retried_until_capacity_returns(aws: Aws) -> None:
    fleet = aws.fleet(max_size=1, warm=0)
    fleet.fail_launches()
    fleet.set_desired_capacity(1)
    view = fleet.describe()
    assert view.serving == ()
    assert [f.at for f in view.failures] == [T0]
    message = view.failures[0].message
    assert message == capacity_message(TYPE, "us-east-1a", ("us-east-1a", "us-east-1b"))
    assert "sufficient g4dn.xlarge capacity in the Availability Zone" in message

    aws.clock.now += 5
    assert len(fleet.describe().failures) == 1, "no retry before the retry interval"
    aws.clock.now += 5
    assert [f.at for f in fleet.describe().failures] == [T0 + 10, T0], "newest first"

    fleet.set_desired_capacity(1)
    assert len(fleet.describe().failures) == 2, "the same capacity again starts nothing new"

    fleet.allow_launches()
    assert len(fleet.describe().serving) == 1


def test_failures_are_bounded_and_carry_the_given_message(aws: Aws) -> None:
    fleet = aws.fleet(max_size=1, warm=0)
    fleet.fail_launches("no g4dn.xlarge anywhere")
    fleet.set_desired_capacity(1)
    for _ in range(20):
        aws.clock.now += 10
        fleet.step()
    failures = fleet.describe().failures
    assert len(failures) == 5
    assert {f.message for f in failures} == {"no g4dn.xlarge anywhere"}


# ---- what moto and the hosts see -----------------------------------------------------------


def test_moto_describes_the_group_as_configured(aws: Aws) -> None:
    aws.fleet(max_size=3, warm=1)
    autoscaling = aws.autoscaling
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[aws.group])[
        "AutoScalingGroups"
    ][0]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 3, 0)
    assert group["NewInstancesProtectedFromScaleIn"] is True
    assert len(group["AvailabilityZones"]) == 2
    assert [p["ProcessName"] for p in group["SuspendedProcesses"]] == ["AZRebalance"]
    assert group["WarmPoolConfiguration"] == {
        "MaxGroupPreparedCapacity": 1,
        "MinSize": 1,
        "PoolState": "Stopped",
        "InstanceReusePolicy": {"ReuseOnScaleIn": True},
    }
    hooks = autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=aws.group)["LifecycleHooks"]
    assert [
        (h["LifecycleTransition"], h["DefaultResult"], h["HeartbeatTimeout"]) for h in hooks
    ] == [("autoscaling:EC2_INSTANCE_LAUNCHING", "ABANDON", HEARTBEAT_S)]


def test_instances_are_tagged_ec2_instances_of_the_group(aws: Aws) -> None:
    fleet = aws.fleet(warm=1)
    instance = fleet.describe().instances[0]
    found = aws.ec2.describe_instances(
        Filters=[{"Name": f"tag:{GROUP_TAG}", "Values": [aws.group]}]
    )["Reservations"][0]["Instances"]
    assert [i["InstanceId"] for i in found] == [instance.instance_id]
    assert found[0]["InstanceType"] == TYPE
    assert (instance.instance_type, instance.zone, instance.launch_time) == (TYPE, "us-east-1a", T0)


def test_hosts_see_their_boot_and_slot_and_public_dns_is_the_slots_origin(aws: Aws) -> None:
    """A running instance has the lowest free slot and that slot's origin as its public DNS;
    a stopped one has neither; every start is a new boot, however quickly it follows a stop."""
    fleet = aws.fleet(max_size=2, warm=1)
    host = only(fleet, "Warmed:Pending:Wait")
    assert fleet.hosts() == (HostMetadata(host, "Warmed:Stopped", boot=1, slot=0),)
    assert fleet.describe().instances[0].public_dns == origin(0)
    fleet.complete_lifecycle_action(host, "CONTINUE")
    assert fleet.hosts() == ()
    assert fleet.describe().instances[0].public_dns == ""

    fleet.set_desired_capacity(1)
    refill = only(fleet, "Warmed:Pending:Wait")
    assert fleet.hosts() == (
        HostMetadata(host, "InService", boot=2, slot=0),
        HostMetadata(refill, "Warmed:Stopped", boot=1, slot=1),
    )
    assert [i.public_dns for i in fleet.describe().instances] == [origin(0), origin(1)]
    fleet.complete_lifecycle_action(refill, "CONTINUE")
    fleet.complete_lifecycle_action(host, "CONTINUE")
    fleet.set_protection(host, protected=False)
    fleet.set_desired_capacity(0)
    assert fleet.hosts() == ()
    fleet.set_desired_capacity(1)  # a start right after the stop
    assert HostMetadata(host, "InService", boot=3, slot=0) in fleet.hosts()


def test_every_ec2_state_change_is_an_event(aws: Aws) -> None:
    fleet = aws.fleet(max_size=1, warm=1)
    host = only(fleet, "Warmed:Pending:Wait")
    fleet.complete_lifecycle_action(host, "CONTINUE")
    fleet.set_desired_capacity(1)
    events = fleet.drain_ec2_events()
    assert [(e.instance_id, e.state) for e in events if e.instance_id == host] == [
        (host, "pending"),
        (host, "running"),
        (host, "stopping"),
        (host, "stopped"),
        (host, "pending"),
        (host, "running"),
    ]
    assert fleet.drain_ec2_events() == []
