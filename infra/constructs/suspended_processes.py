"""Auto Scaling processes suspended on a group for good, which CloudFormation cannot express.

`AWS::AutoScaling::AutoScalingGroup` has no property for it (its UpdatePolicy suspends processes
only while CloudFormation updates the group), so a custom resource calls `SuspendProcesses`
when the group is created or updated:
https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-suspend-resume-processes.html
Deleting the group deletes the suspension with it; nothing to undo.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.constructs.fleet_scope import FleetScope
from infra.nag import acknowledge_provider_logs


class SuspendedProcesses(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        group: autoscaling.AutoScalingGroup,
        fleet: FleetScope,
        processes: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.processes = tuple(processes)
        call = cr.AwsSdkCall(
            service="AutoScaling",
            action="suspendProcesses",
            parameters={
                "AutoScalingGroupName": fleet.group_name,
                "ScalingProcesses": list(self.processes),
            },
            physical_resource_id=cr.PhysicalResourceId.of(
                f"{fleet.group_name}:{','.join(self.processes)}"
            ),
        )
        self.resource = cr.AwsCustomResource(
            self,
            "Suspend",
            on_create=call,
            on_update=call,
            install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [fleet.statement(self, ["autoscaling:SuspendProcesses"])]
            ),
        )
        # The call names the group by its (fixed) name, which is no reference: order it here.
        self.resource.node.add_dependency(group)
        fleet.acknowledge_group_arn(self.resource)
        acknowledge_provider_logs(self.resource)
