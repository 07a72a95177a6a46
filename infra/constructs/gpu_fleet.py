"""The GPU fleet: an Auto Scaling group of GPU hosts with a warm pool of stopped,
pre-initialized hosts and a launch lifecycle hook. Nothing here names an instance.

- Size: min 0, max `max_hosts`, and no desired capacity in the template: the control plane
  owns it (`SetDesiredCapacity`), so a redeploy never resets a running fleet. CloudFormation
  starts a new group at its minimum, 0.
- New instances are protected from scale-in: the control plane unprotects exactly the idle
  host, then lowers the desired capacity, and the group picks that host; with every host
  protected, a lower desired capacity terminates nothing
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-protection.html).
- Instance types: a mixed instances policy, On-Demand only, in the configured order
  (`prioritized`), so the group itself falls back to the next type when a zone has no
  capacity. Warm pools accept mixed instances policies since November 2025
  (docs/architecture.md, "The fleet", cites what that rests on).
- Zones: the public subnets of every zone of the network; AZ rebalancing is suspended, so that
  nothing terminates a busy host to even out the zones.
- Warm pool (`warm_hosts` > 0): stopped instances that ran the launch hook's initialization
  once; scale-in returns a host to the pool instead of terminating it.
- Launch hook: a new instance pauses in `Warmed:Pending:Wait` (entering the pool: initialize,
  then complete) and again in `Pending:Wait` on every scale-out (start, complete when ready); a
  host that neither completes nor heartbeats within the timeout is abandoned (terminated)
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Tags
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.constructs.fleet_scope import FleetScope
from infra.constructs.suspended_processes import SuspendedProcesses
from infra.nag import acknowledge

LAUNCH_TRANSITION: Final = "autoscaling:EC2_INSTANCE_LAUNCHING"
HOOK_DEFAULT_RESULT: Final = "ABANDON"
"""A host that never reports initialized or ready is terminated (and, for a scale-out,
replaced by the group), never put in service half-installed."""
SUSPENDED_PROCESSES: Final = ("AZRebalance",)


class GpuFleet(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        fleet: FleetScope,
        vpc: ec2.IVpc,
        launch_template: ec2.LaunchTemplate,
        instance_types: tuple[str, ...],
        max_hosts: int,
        warm_hosts: int,
        launch_hook_name: str,
        launch_hook_heartbeat_s: int,
        name_tag: str,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 0 <= warm_hosts <= max_hosts:
            raise ValueError(f"warm_hosts must be within 0..{max_hosts}, got {warm_hosts}")
        self.group = autoscaling.AutoScalingGroup(
            self,
            "Group",
            auto_scaling_group_name=fleet.group_name,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            mixed_instances_policy=autoscaling.MixedInstancesPolicy(
                launch_template=launch_template,
                launch_template_overrides=[
                    autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(name))
                    for name in instance_types
                ],
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_allocation_strategy=autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
                    on_demand_base_capacity=0,
                    on_demand_percentage_above_base_capacity=100,
                ),
            ),
            min_capacity=0,
            max_capacity=max_hosts,
            new_instances_protected_from_scale_in=True,
        )
        # The hook is part of the group itself (not a separate resource), so that it exists
        # before the first instance launches into the warm pool.
        group_resource = self.group.node.default_child
        assert isinstance(group_resource, autoscaling.CfnAutoScalingGroup)
        group_resource.lifecycle_hook_specification_list = [
            autoscaling.CfnAutoScalingGroup.LifecycleHookSpecificationProperty(
                lifecycle_hook_name=launch_hook_name,
                lifecycle_transition=LAUNCH_TRANSITION,
                heartbeat_timeout=launch_hook_heartbeat_s,
                default_result=HOOK_DEFAULT_RESULT,
            )
        ]
        acknowledge(
            group_resource,
            "AwsSolutions-AS3",
            reason="Every event of the group reaches the reconcile Lambda through EventBridge "
            "(infra/constructs/reconcile_triggers.py); SNS notifications would be a second, "
            "unread channel.",
        )
        acknowledge(
            group_resource,
            "AwsSolutions-EC26",
            reason="cdk-nag cannot follow the launch template version (a GetAtt) to its volumes; "
            "the template's only volume, the root, is encrypted (tests/infra/cdk checks it).",
        )
        Tags.of(self).add(fleet.tag_key, fleet.tag_value)
        Tags.of(self).add("Name", name_tag)

        self.warm_pool = (
            self.group.add_warm_pool(
                pool_state=autoscaling.PoolState.STOPPED,
                reuse_on_scale_in=True,
                min_size=warm_hosts,
                # The pool's size is max(MinSize, MaxGroupPreparedCapacity - desired capacity);
                # only with both equal is it absolute: exactly `warm_hosts` stopped hosts,
                # however many run (the API reference of PutWarmPool, MaxGroupPreparedCapacity:
                # https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutWarmPool.html).
                # Left out, it would be max size - desired capacity: a stopped disk for every
                # host that is not running.
                max_group_prepared_capacity=warm_hosts,
            )
            if warm_hosts > 0
            else None
        )
        self.suspended = SuspendedProcesses(
            self, "Suspended", group=self.group, fleet=fleet, processes=SUSPENDED_PROCESSES
        )
