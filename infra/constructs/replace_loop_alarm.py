"""The alarm against a replace loop: the fleet's launches keep failing.

A host whose initialize fails for an infrastructure reason abandons its launch lifecycle
action, and the group launches another to refill the warm pool; a host that never becomes
ready is abandoned the same way. Each such launch, like one the group cannot place (no
capacity, a bad template), is an "EC2 Instance Launch Unsuccessful" event of the group
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html).
Nothing in the group itself stops retrying, and each try is a GPU boot of several minutes:
this alarm says so once more than `launches` fail within `hours`.

The count is the EventBridge metric `TriggeredRules` of the rule that matches those events
(`AWS/Events`, dimension `RuleName`, published only when a rule matches, so no data is no
failure): https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html; AWS
suggests alarming on a rule's maximum expected count of it:
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules-best-practices.html.
The group's own metrics count instances by state, never failed launches.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from constructs import Construct


class ReplaceLoopAlarm(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        launch_failures: events.IRule,
        launches: int,
        hours: int,
    ) -> None:
        super().__init__(scope, construct_id)
        failed_launches = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="TriggeredRules",
            dimensions_map={"RuleName": launch_failures.rule_name},
            statistic="Sum",
            period=Duration.hours(hours),
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "Alarm",
            alarm_description=(
                f"More than {launches} launches of the GPU fleet failed within {hours} h: hosts "
                "abandoned at initialize or not ready in time, or no capacity (a replace loop; "
                "see docs/operations.md)"
            ),
            metric=failed_launches,
            threshold=launches,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
