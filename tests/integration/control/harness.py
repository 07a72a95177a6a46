"""The test harness of the control plane's integration tests: a token issuer, a clock, and
direct access to the emulated AWS account (for arranging and asserting)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.ec2.models import ec2_backends

from lambdas.aws.codec import decode_item, encode
from lambdas.reconcile.model import HostRecord

ACCOUNT = "123456789012"
REGION = "us-east-1"
ISSUER = "https://issuer.spinup.test"
AUDIENCE = "spinup"
T0 = 1_800_000_000.0
TYPES = ("g5.xlarge", "g6.xlarge", "g4dn.xlarge")


class Issuer:
    """A token issuer: an RSA key whose JWKS a local HTTP server publishes (PyJWKClient
    fetches only http(s) URLs)."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = uuid.uuid4().hex
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self._key.public_key(), as_dict=True
        )
        jwk.update(kid=self._kid, use="sig", alg="RS256")
        self.jwks = json.dumps({"keys": [jwk]}).encode()
        self.jwks_url = ""

    def token(self, user: str = "alice", **claims: Any) -> str:
        now = int(time.time())  # PyJWT checks `exp` against the real clock
        payload = {"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
        payload.update(claims)
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self._kid})

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
        """Write to the host record as the backend does (e.g. ready_at, a heartbeat)."""
        self.client("dynamodb").update_item(
            TableName=self.table_name,
            Key={"pk": {"S": "host#gpu-0"}},
            UpdateExpression=expression,
            ExpressionAttributeValues={f":{k}": encode(v) for k, v in values.items()},
        )

    def host(self) -> HostRecord:
        item = self.client("dynamodb").get_item(
            TableName=self.table_name, Key={"pk": {"S": "host#gpu-0"}}, ConsistentRead=True
        )["Item"]
        return HostRecord.model_validate({**decode_item(item), "host_id": "gpu-0"})
