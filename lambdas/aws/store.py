"""The thin DynamoDB adapter: the host record and the session items, one table (`pk` string).

I/O only: what to change and under which condition is decided in `lambdas.domain` and made an
expression by `lambdas.aws.expressions`. Every write that matters is conditional; the
conditions are the concurrency control (many Lambda processes run at once, so there are no
in-process locks).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from lambdas.aws.codec import decode_item, encode, encode_item
from lambdas.aws.expressions import UpdateRequest, conditional_update, lease_update
from lambdas.domain.actions import Transition
from lambdas.domain.host_record import (
    PARTITION_KEY,
    RECORD_EXISTS,
    HostRecord,
    SessionItem,
    host_key,
    session_key,
)
from lambdas.domain.leases import LeaseChange

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

log = logging.getLogger(__name__)

_CONDITION_FAILED = "ConditionalCheckFailedException"
RECORD_ABSENT = f"attribute_not_exists({PARTITION_KEY})"


def is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == _CONDITION_FAILED


class HostStore:
    def __init__(
        self, client: DynamoDBClient, table_name: str, host_id: str, instance_id: str
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.host_id = host_id
        self.instance_id = instance_id
        self._host_key: dict[str, AttributeValueTypeDef] = {PARTITION_KEY: {"S": host_key(host_id)}}

    # --- the host record -------------------------------------------------------------------

    def load_host(self) -> HostRecord:
        """The host record, read consistently; created with defaults on first use."""
        answer = self.client.get_item(
            TableName=self.table_name, Key=self._host_key, ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None:
            self.ensure_host()
            return self._fresh_host()
        return HostRecord.model_validate({**decode_item(item), "host_id": self.host_id})

    def ensure_host(self) -> None:
        """Create the host record if it does not exist (idempotent)."""
        fresh = self._fresh_host().model_dump(exclude_none=True, exclude={"host_id"})
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=encode_item({PARTITION_KEY: host_key(self.host_id), **fresh}),
                ConditionExpression=RECORD_ABSENT,
            )
            log.info("created host record %s", host_key(self.host_id))
        except ClientError as error:
            if not is_condition_failure(error):
                raise

    def _fresh_host(self) -> HostRecord:
        return HostRecord(host_id=self.host_id, instance_id=self.instance_id)

    def apply(self, transition: Transition) -> bool:
        """Apply a guarded transition; False when the record changed since it was read."""
        return self._update_host(conditional_update(transition))

    def apply_lease(self, change: LeaseChange) -> bool:
        """Apply a lease change; False when its guard does not hold (the user's leases changed,
        or the session has ended)."""
        return self._update_host(lease_update(change))

    def _update_host(self, request: UpdateRequest) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._host_key,
                UpdateExpression=request.update,
                ConditionExpression=request.condition,
                ExpressionAttributeNames=request.names,
                ExpressionAttributeValues=request.values,
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    # --- session items ---------------------------------------------------------------------

    def put_session(self, item: SessionItem) -> None:
        """Write a new session item (its id is fresh: an existing one is an error)."""
        fields = item.model_dump(exclude_none=True)  # absent, not NULL: conditions test absence
        self.client.put_item(
            TableName=self.table_name,
            Item=encode_item({PARTITION_KEY: session_key(item.session_id), **fields}),
            ConditionExpression=RECORD_ABSENT,
        )

    def delete_session(self, session_id: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key=self._session_key(session_id))

    @staticmethod
    def _session_key(session_id: str) -> dict[str, AttributeValueTypeDef]:
        return {PARTITION_KEY: {"S": session_key(session_id)}}

    def get_session(self, session_id: str) -> SessionItem | None:
        answer = self.client.get_item(
            TableName=self.table_name,
            Key=self._session_key(session_id),
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return None if item is None else SessionItem.model_validate(decode_item(item))

    def mark_released(self, session_id: str, now: float) -> None:
        """Record when the session was released, once (a second release changes nothing)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._session_key(session_id),
                UpdateExpression="SET released_at = :now",
                ConditionExpression=f"{RECORD_EXISTS} AND attribute_not_exists(released_at)",
                ExpressionAttributeValues={":now": encode(now)},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the table (partition key `pk`, on demand) if it does not exist; for the local
    mode and tests — in AWS the CDK stack owns the table."""
    try:
        client.create_table(
            TableName=table_name,
            KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
