"""The thin DynamoDB adapter: the fleet record, the host records and the session items, one
table (`pk` string).

I/O only: what to change and under which condition is decided in `lambdas.domain` and made an
expression by `lambdas.aws.expressions`. Every write that matters is conditional; the
conditions are the concurrency control (many Lambda processes run at once, so there are no
in-process locks).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdas.aws.codec import decode_item, encode, encode_item
from lambdas.aws.errors import error_code
from lambdas.aws.expressions import UpdateRequest, update_request
from lambdas.domain.actions import Transition
from lambdas.domain.host_record import (
    FLEET_KEY,
    PARTITION_KEY,
    RECORD_EXISTS,
    FleetRecord,
    HostRecord,
    SessionItem,
    host_id_of,
    host_key,
    session_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

log = logging.getLogger(__name__)

_CONDITION_FAILED = "ConditionalCheckFailedException"
_TRANSACTION_CANCELED = "TransactionCanceledException"
"""A transaction whose condition failed (or that conflicted with another): not applied."""
_BATCH_GET_MAX = 100
RECORD_ABSENT = f"attribute_not_exists({PARTITION_KEY})"


def is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == _CONDITION_FAILED


class ControlStore:
    """The fleet record, the host records and the session items of one table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    # --- the fleet record and the host records ---------------------------------------------

    def load_fleet(self) -> FleetRecord:
        """The fleet record, read consistently; created with defaults on first use."""
        item = self._get(FLEET_KEY)
        if item is None:
            self._create(FLEET_KEY, FleetRecord().model_dump(exclude_none=True))
            return self.load_fleet()
        return FleetRecord.model_validate(item)

    def load_host(self, host_id: str) -> HostRecord | None:
        item = self._get(host_key(host_id))
        return None if item is None else _host(host_id, item)

    def load_hosts(self, host_ids: Iterable[str]) -> dict[str, HostRecord]:
        """The records of `host_ids` that exist, read consistently."""
        wanted = sorted(set(host_ids))
        found: dict[str, HostRecord] = {}
        for start in range(0, len(wanted), _BATCH_GET_MAX):
            keys: list[Mapping[str, AttributeValueTypeDef]] = [
                {PARTITION_KEY: {"S": host_key(h)}} for h in wanted[start : start + _BATCH_GET_MAX]
            ]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self.client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    decoded = decode_item(item)
                    host_id = host_id_of(str(decoded.pop(PARTITION_KEY)))
                    found[host_id] = _host(host_id, decoded)
                request = dict(answer.get("UnprocessedKeys") or {})
        return found

    def ensure_host(self, host_id: str) -> None:
        """Create host `host_id`'s record if it does not exist (idempotent)."""
        fresh = HostRecord(host_id=host_id).model_dump(exclude_none=True, exclude={"host_id"})
        self._create(host_key(host_id), fresh)

    def _get(self, key: str) -> dict[str, Any] | None:
        answer = self.client.get_item(
            TableName=self.table_name, Key={PARTITION_KEY: {"S": key}}, ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None:
            return None
        decoded = decode_item(item)
        decoded.pop(PARTITION_KEY, None)
        return decoded

    def _create(self, key: str, fields: Mapping[str, object]) -> None:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=encode_item({PARTITION_KEY: key, **fields}),
                ConditionExpression=RECORD_ABSENT,
            )
            log.info("created record %s", key)
        except ClientError as error:
            if not is_condition_failure(error):
                raise

    def apply(self, transition: Transition) -> bool:
        """Apply a transition's updates, atomically; False when a guard no longer holds (the
        records changed since they were read)."""
        requests = [(u.key, update_request(u)) for u in transition.updates]
        if len(requests) == 1:
            key, request = requests[0]
            return self._update(key, request)
        items: list[TransactWriteItemTypeDef] = []
        for key, request in requests:
            common: dict[str, Any] = {
                "TableName": self.table_name,
                "Key": {PARTITION_KEY: {"S": key}},
                "ConditionExpression": request.condition,
                "ExpressionAttributeNames": request.names,
            }
            if request.values:
                common["ExpressionAttributeValues"] = request.values
            if request.update:
                items.append({"Update": {**common, "UpdateExpression": request.update}})  # type: ignore[typeddict-item]
            else:
                items.append({"ConditionCheck": common})  # type: ignore[typeddict-item]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error_code(error) == _TRANSACTION_CANCELED:
                return False
            raise
        return True

    def _update(self, key: str, request: UpdateRequest) -> bool:
        kwargs: dict[str, Any] = {}
        if request.values:
            kwargs["ExpressionAttributeValues"] = request.values
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": key}},
                UpdateExpression=request.update,
                ConditionExpression=request.condition,
                ExpressionAttributeNames=request.names,
                **kwargs,
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


def _host(host_id: str, fields: Mapping[str, Any]) -> HostRecord:
    return HostRecord.model_validate({**fields, "host_id": host_id})
