"""Safety nets on the reconcile Lambda: it errors, or it stopped running at all.

If reconcile is down nothing stops an idle GPU, which is the expensive failure; the on-host
watchdog is the second net.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct


class ReconcileAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        reconcile: lambda_.IFunction,
        silence_minutes: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.errors = cloudwatch.Alarm(
            self,
            "Errors",
            alarm_description="The reconcile Lambda failed (idle GPU instances may not stop)",
            metric=reconcile.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # No datapoint at all means no invocation: missing data is the alarm condition.
        self.not_running = cloudwatch.Alarm(
            self,
            "NotRunning",
            alarm_description=f"The reconcile Lambda has not run for {silence_minutes} minutes",
            metric=reconcile.metric_invocations(
                period=Duration.minutes(silence_minutes), statistic="Sum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
