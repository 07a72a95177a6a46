"""The test harness of the control plane's integration tests: a token issuer, a clock, and
direct access to the emulated AWS account (for arranging and asserting)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from moto.ec2.models import ec2_backends

from infra.local.issuer import DevIssuer
from lambdas.aws.codec import decode_item, encode
from lambdas.domain.host_record import PARTITION_KEY, BackendUpdate, HostRecord, host_key

ACCOUNT = "123456789012"
REGION = "us-east-1"
ISSUER = "https://issuer.spinup.test"
AUDIENCE = "spinup"
T0 = 1_800_000_000.0
TYPES = ("g5.xlarge", "g6.xlarge", "g4dn.xlarge")
TICKET_SECRET = "control-test-ticket-secret-32-bytes-at-least"
HOST_ID = "gpu-0"
HOST_KEY = {PARTITION_KEY: {"S": host_key(HOST_ID)}}


class Issuer(DevIssuer):
    """The development issuer; a local HTTP server publishes `jwks_body` at `jwks_url`
    (PyJWKClient fetches only http(s) URLs)."""

    def __init__(self) -> None:
        super().__init__(issuer=ISSUER, audience=AUDIENCE)
        self.jwks_body = json.dumps(self.jwks()).encode()
        self.jwks_url = ""

    def token(self, user: str = "alice", **claims: Any) -> str:
        # PyJWT checks `exp` against the real clock, not the tests' injected one.
        return self.issue(user, ttl_s=600, **claims)

    def headers(self, user: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass(frozen=True)
class Aws:
    """Direct access to the emulated account, for arranging and asserting."""

    endpoint: str
    instance_id: str
    table_name: str
    session: boto3.session.Session

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def ec2_state(self) -> str:
        return self.describe()["State"]["Name"]  # type: ignore[no-any-return]

    def describe(self) -> dict[str, Any]:
        answer = self.client("ec2").describe_instances(InstanceIds=[self.instance_id])
        return answer["Reservations"][0]["Instances"][0]  # type: ignore[no-any-return]

    def force_state(self, name: str) -> None:
        """moto changes state at once; intermediate states are injected in-process."""
        ec2_backends[ACCOUNT][REGION].get_instance(self.instance_id)._state.name = name

    def update_host(self, expression: str, **values: Any) -> None:
        """Write to the host record directly (arranging what the control plane wrote)."""
        self.client("dynamodb").update_item(
            TableName=self.table_name,
            Key=HOST_KEY,
            UpdateExpression=expression,
            ExpressionAttributeValues={f":{k}": encode(v) for k, v in values.items()},
        )

    def report(self, update: BackendUpdate) -> None:
        """Write to the host record as the backend does (a milestone, a heartbeat)."""
        self.client("dynamodb").update_item(
            TableName=self.table_name,
            Key=HOST_KEY,
            UpdateExpression=update.expression,
            ExpressionAttributeValues={k: encode(v) for k, v in update.values.items()},
        )

    def delete_host(self) -> None:
        self.client("dynamodb").delete_item(TableName=self.table_name, Key=HOST_KEY)

    def host(self) -> HostRecord:
        item = self.client("dynamodb").get_item(
            TableName=self.table_name, Key=HOST_KEY, ConsistentRead=True
        )["Item"]
        return HostRecord.model_validate({**decode_item(item), "host_id": HOST_ID})
