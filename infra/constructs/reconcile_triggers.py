"""What runs the reconcile Lambda: a one-minute schedule, every EC2 instance state change, and
every Auto Scaling event of the fleet's group. Any of them reconciles the whole fleet.
The group's unsuccessful launches have a rule of their own (`launch_failures`), so that the
replace-loop alarm can count them by its rule (`ReplaceLoopAlarm`).

EC2 state-change events carry no tags, and a host's instance id is never wired in, so that rule
takes every instance of the account and region; reconcile looks only at the group's members.
Auto Scaling events name their group (`detail.AutoScalingGroupName`):
https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

LAUNCH_UNSUCCESSFUL = "EC2 Instance Launch Unsuccessful"
"""The event of a launch that failed: no capacity, a bad template, or a launch lifecycle
action that ended in ABANDON (a host whose initialize failed, or that went silent)."""


class ReconcileTriggers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        reconcile: lambda_.IFunction,
        group_name: str,
        period_minutes: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # A missed tick is superseded by the next one a minute later: retrying it is noise.
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Reconcile the GPU fleet every minute (idle stop, lease expiry, retries)",
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
            description="Reconcile as soon as an EC2 instance changes state",
            event_pattern=events.EventPattern(
                source=["aws.ec2"],
                detail_type=["EC2 Instance State-change Notification"],
            ),
            targets=[targets.LambdaFunction(reconcile, retry_attempts=2)],
        )
        self.group_events = events.Rule(
            self,
            "GroupEvents",
            description="Reconcile on every launch, termination and lifecycle action of the fleet",
            event_pattern=events.EventPattern(
                source=["aws.autoscaling"],
                detail_type=events.Match.anything_but(LAUNCH_UNSUCCESSFUL),
                detail={"AutoScalingGroupName": [group_name]},
            ),
            targets=[targets.LambdaFunction(reconcile, retry_attempts=2)],
        )
        # Reconciled like any group event; a rule of its own so that its `TriggeredRules`
        # counts exactly the failed launches, and with a target, so that it runs at all.
        self.launch_failures = events.Rule(
            self,
            "LaunchFailures",
            description="Reconcile on every unsuccessful launch of the fleet (counted by an alarm)",
            event_pattern=events.EventPattern(
                source=["aws.autoscaling"],
                detail_type=[LAUNCH_UNSUCCESSFUL],
                detail={"AutoScalingGroupName": [group_name]},
            ),
            targets=[targets.LambdaFunction(reconcile, retry_attempts=2)],
        )
