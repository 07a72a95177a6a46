"""What runs the reconcile Lambda: a one-minute schedule and the instance's state changes."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct


class ReconcileTriggers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        reconcile: lambda_.IFunction,
        instance_id: str,
        period_minutes: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # A missed tick is superseded by the next one a minute later: retrying it is noise.
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Reconcile the GPU host every minute (idle stop, lease expiry, retries)",
            schedule=events.Schedule.rate(Duration.minutes(period_minutes)),
            targets=[
                targets.LambdaFunction(
                    reconcile, retry_attempts=0, max_event_age=Duration.minutes(period_minutes)
                )
            ],
        )
        self.state_changes = events.Rule(
            self,
            "InstanceStateChange",
            description="Reconcile as soon as the GPU instance changes state",
            event_pattern=events.EventPattern(
                source=["aws.ec2"],
                detail_type=["EC2 Instance State-change Notification"],
                detail={"instance-id": [instance_id]},
            ),
            targets=[targets.LambdaFunction(reconcile, retry_attempts=2)],
        )
