"""The thin DynamoDB adapter: the host record and the session items, one table (`pk` string).

Every write that matters is conditional; the conditions are the concurrency control (many
Lambda processes run at once, so there are no in-process locks).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from lambdas.aws.codec import decode_item, encode, encode_item
from lambdas.aws.expressions import conditional_update
from lambdas.domain.actions import Transition
from lambdas.domain.host_record import (
    PARTITION_KEY,
    RECORD_EXISTS,
    HostRecord,
    SessionItem,
    SessionLease,
    host_key,
    session_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

log = logging.getLogger(__name__)

_CONDITION_FAILED = "ConditionalCheckFailedException"
RECORD_ABSENT = f"attribute_not_exists({PARTITION_KEY})"


class StoreConflictError(RuntimeError):
    """The host record kept changing under a write; the caller may retry."""


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
        request = conditional_update(transition)
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

    # --- sessions --------------------------------------------------------------------------

    def open_session(self, item: SessionItem, max_per_user: int) -> bool:
        """Record a start request with its session, unless the user already holds
        `max_per_user` sessions (then False). Bumps `generation`: a start wins over a stop.

        The session item is written first; the lease in the host record, added by one
        conditional update, is what makes the session open. A refused item is deleted again
        (one left behind by a crash is harmless: without its lease the session reads as ended).
        """
        fields = item.model_dump(exclude_none=True)  # absent, not NULL: conditions test absence
        self.client.put_item(
            TableName=self.table_name,
            Item=encode_item({PARTITION_KEY: session_key(item.session_id), **fields}),
            ConditionExpression=RECORD_ABSENT,
        )
        # Each lost race means another request of this user got a lease, so after
        # max_per_user + 1 rounds the limit answers.
        for _ in range(max_per_user + 2):
            held = self.load_host().sessions.get(item.user)
            if held is not None and len(held) >= max_per_user:
                self._delete_session(item.session_id)
                return False
            if self._add_lease(item, max_per_user, first=held is None):
                return True
        self._delete_session(item.session_id)
        raise StoreConflictError("the host record kept changing while opening a session")

    def _add_lease(self, item: SessionItem, max_per_user: int, *, first: bool) -> bool:
        """One atomic update: the user's first lease creates their map, a further one needs
        room in it. False when another request changed the user's map first."""
        lease = SessionLease(created_at=item.created_at, expires_at=item.expires_at).model_dump()
        names = {"#u": item.user, "#error": "error"}
        values: dict[str, AttributeValueTypeDef] = {
            ":running": {"S": "running"},
            ":now": encode(item.created_at),
            ":one": {"N": "1"},
            ":blank": {"S": ""},
        }
        if first:
            path, guard = "sessions.#u", "attribute_not_exists(sessions.#u)"
            values[":lease"] = encode({item.session_id: lease})
        else:
            path, guard = "sessions.#u.#s", "size(sessions.#u) < :max"
            names["#s"] = item.session_id
            values[":lease"] = encode(lease)
            values[":max"] = {"N": str(max_per_user)}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._host_key,
                UpdateExpression=(
                    f"SET {path} = :lease, desired = :running, last_start_request_at = :now, "
                    "generation = generation + :one, message = :blank REMOVE #error"
                ),
                ConditionExpression=f"attribute_exists(sessions) AND {guard}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def _delete_session(self, session_id: str) -> None:
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

    def keepalive(self, user: str, session_id: str, now: float) -> bool:
        """Count a keepalive as activity and win over a pending stop; False if the session
        has ended (released, or the instance was stopped since)."""
        return self._update_live_session(
            user,
            session_id,
            "SET last_keepalive_at = :now, generation = generation + :one",
            {":now": encode(now), ":one": {"N": "1"}},
        )

    def release(self, user: str, session_id: str, now: float) -> bool:
        """Drop the session's lease and mark the item released; False if it had ended."""
        update = "REMOVE sessions.#u.#s SET last_release_at = :now"
        dropped = self._update_live_session(user, session_id, update, {":now": encode(now)})
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
        return dropped

    def _update_live_session(
        self,
        user: str,
        session_id: str,
        update: str,
        values: dict[str, AttributeValueTypeDef],
    ) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._host_key,
                UpdateExpression=update,
                ConditionExpression="attribute_exists(sessions.#u.#s)",
                ExpressionAttributeNames={"#u": user, "#s": session_id},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True


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
