"""The control plane's one table: the fleet record, one record per host and the session items
(docs/architecture.md)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from lambdas.domain.host_record import HOST_PREFIX, PARTITION_KEY


class ControlTable(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # Session items carry `expires_at`; DynamoDB deletes them some time after it.
            time_to_live_attribute="expires_at",
            # Everything here is rebuilt on first use: the fleet and host records by the
            # control plane, sessions by users. `cdk destroy` should leave nothing behind.
            removal_policy=RemovalPolicy.DESTROY,
        )

    def grant_host_record_access(self, role: iam.IRole) -> iam.Policy:
        """What a GPU host may do: read and update host records (`host#…`), nothing else. The
        hosts share one role, and a host's id (its instance id) is known only once it runs, so
        IAM admits the key prefix; each backend writes only its own record.

        The policy is created here, in the table's stack, and attached to the (imported) role:
        granting on the role's own default policy would make the host's stack depend on this one.
        """
        return iam.Policy(
            self,
            "HostRecordAccess",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                    resources=[self.table.table_arn],
                    conditions={
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{HOST_PREFIX}*"]}
                    },
                )
            ],
        )
