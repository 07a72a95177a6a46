"""The test harness of the control plane's integration tests: a token issuer, a clock, the
fleet's Auto Scaling adapter with a call log and injected faults, an in-memory route table,
and direct access to the emulated AWS account (for arranging and asserting).

moto's Auto Scaling launches instances `InService` and running the moment the desired
capacity rises, terminates unprotected ones when it drops, never fails a scaling activity and
has no warm pool (the local mode's `infra.local.fleet` emulates that; not these tests).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from botocore.exceptions import ClientError

from infra.local.issuer import DevIssuer
from lambdas.aws.clients import Clients
from lambdas.aws.codec import decode_item, encode
from lambdas.aws.fleet import SCALING_IN_PROGRESS, FleetGateway
from lambdas.domain.fleet import GroupView, ScalingFailure
from lambdas.domain.host_record import (
    FLEET_KEY,
    PARTITION_KEY,
    BackendUpdate,
    FleetRecord,
    HostRecord,
    Milestone,
    host_key,
    milestone_update,
)
from lambdas.reconcile.service import reconcile_once
from lambdas.settings import Settings

ACCOUNT = "123456789012"
REGION = "us-east-1"
ISSUER = "https://issuer.spinup.test"
AUDIENCE = "spinup"
T0 = 1_800_000_000.0
TYPES = ("g5.xlarge", "g6.xlarge", "g4dn.xlarge")
TICKET_SECRET = "control-test-ticket-secret-32-bytes-at-least"
GROUP = "spinup-gpu-it"
MAX_HOSTS = 2
WS_BASE_URL = "wss://spinup.test/ws"
IMAGE_ID = "ami-0123456789abcdef0"


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


class MemoryRoutes:
    """The route table (`lambdas.aws.routes.RouteTable`) in memory: moto has no CloudFront
    KeyValueStore data plane."""

    def __init__(self) -> None:
        self._entries: dict[str, str] = {}
        self._lock = threading.Lock()

    def entries(self) -> dict[str, str]:
        with self._lock:
            return dict(self._entries)

    def put(self, host_id: str, origin: str) -> None:
        with self._lock:
            self._entries[host_id] = origin

    def delete(self, host_id: str) -> None:
        with self._lock:
            self._entries.pop(host_id, None)


@dataclass(frozen=True)
class FleetCall:
    name: str
    """`set_desired_capacity`, `set_protection` or `replace`."""
    args: tuple[Any, ...]


def busy_error() -> ClientError:
    """What Auto Scaling answers while a scaling activity of the group is in progress."""
    return ClientError(
        {
            "Error": {
                "Code": SCALING_IN_PROGRESS,
                "Message": "Scaling activity 1234 is in progress and blocks this action.",
            }
        },
        "SetDesiredCapacity",
    )


class RecordingFleet:
    """The real `AutoScalingFleet` against moto, with every call it passes on logged (thread
    safe: the API's requests run in worker threads) and two faults moto never makes:

    - `busy(n)`: the next n `SetDesiredCapacity` calls fail with `ScalingActivityInProgress`;
    - `no_capacity(message)`: a scale-out is accepted (the group's desired capacity says so)
      but launches nothing, and the group reports a failed scaling activity, as Auto Scaling
      does when no zone has capacity for any of the group's types.
    """

    def __init__(self, inner: FleetGateway, clock: Callable[[], float]) -> None:
        self.inner = inner
        self.clock = clock
        self.calls: list[FleetCall] = []
        self._lock = threading.Lock()
        self._busy = 0
        self._short: str | None = None
        self._unmet: int | None = None
        """The desired capacity accepted while short of capacity (moto never saw it)."""
        self._failures: tuple[ScalingFailure, ...] = ()

    # fault injection

    def busy(self, times: int) -> None:
        with self._lock:
            self._busy = times

    def no_capacity(self, message: str | None) -> None:
        """From now on, scale-outs fail with `message` (None: capacity is back)."""
        with self._lock:
            self._short = message

    # what is asserted

    def capacity_calls(self) -> list[int]:
        """Every SetDesiredCapacity passed on, with the capacity asked for."""
        with self._lock:
            return [c.args[0] for c in self.calls if c.name == "set_desired_capacity"]

    def capacity_changes(self) -> list[int]:
        """The SetDesiredCapacity calls that changed the group's desired capacity (a call
        with the value the group already has changes nothing: a reconcile converging on a
        fleet record read a moment after the group makes those)."""
        with self._lock:
            return [
                c.args[0]
                for c in self.calls
                if c.name == "set_desired_capacity" and c.args[0] != c.args[1]
            ]

    def protections(self) -> list[tuple[str, bool]]:
        with self._lock:
            return [(c.args[0], c.args[1]) for c in self.calls if c.name == "set_protection"]

    # FleetGateway

    def describe(self) -> GroupView:
        view = self.inner.describe()
        unmet, failures = self._unmet, self._failures
        if unmet is None:
            return view
        return dataclasses.replace(view, desired_capacity=unmet, failures=failures + view.failures)

    def set_desired_capacity(self, capacity: int) -> None:
        with self._lock:
            if self._busy > 0:
                self._busy -= 1
                raise busy_error()
            # Under the lock, so that "before" is the value this call changes.
            group = self.describe()
            self.calls.append(FleetCall("set_desired_capacity", (capacity, group.desired_capacity)))
            short = self._short
            if short is not None and capacity > len(group.serving):
                self._unmet = capacity
                self._failures = (ScalingFailure(at=self.clock(), message=short),)
                return
            self._unmet = None
            self.inner.set_desired_capacity(capacity)

    def set_protection(self, instance_id: str, *, protected: bool) -> None:
        with self._lock:
            self.calls.append(FleetCall("set_protection", (instance_id, protected)))
        self.inner.set_protection(instance_id, protected=protected)

    def replace(self, instance_id: str) -> None:
        with self._lock:
            self.calls.append(FleetCall("replace", (instance_id,)))
        self.inner.replace(instance_id)


@dataclass(frozen=True)
class Aws:
    """Direct access to the emulated account, for arranging and asserting."""

    endpoint: str
    table_name: str
    group_name: str
    session: boto3.session.Session

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    # the group

    def group(self) -> dict[str, Any]:
        answer = self.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.group_name]
        )
        return answer["AutoScalingGroups"][0]  # type: ignore[no-any-return]

    def desired_capacity(self) -> int:
        return int(self.group()["DesiredCapacity"])

    def in_service(self) -> list[str]:
        """The group's instances in service, in launch order."""
        return [i["InstanceId"] for i in self.group()["Instances"]]

    def protected(self) -> dict[str, bool]:
        return {i["InstanceId"]: i["ProtectedFromScaleIn"] for i in self.group()["Instances"]}

    def ec2_state(self, instance_id: str) -> str:
        answer = self.client("ec2").describe_instances(InstanceIds=[instance_id])
        return answer["Reservations"][0]["Instances"][0]["State"]["Name"]  # type: ignore[no-any-return]

    # the records

    def fleet(self) -> FleetRecord:
        return FleetRecord.model_validate(self._item(FLEET_KEY))

    def host(self, host_id: str) -> HostRecord:
        return HostRecord.model_validate({**self._item(host_key(host_id)), "host_id": host_id})

    def update_fleet(self, expression: str, **values: Any) -> None:
        """Write to the fleet record directly (arranging what the control plane wrote)."""
        self.client("dynamodb").update_item(
            TableName=self.table_name,
            Key={PARTITION_KEY: {"S": FLEET_KEY}},
            UpdateExpression=expression,
            ExpressionAttributeValues={f":{k}": encode(v) for k, v in values.items()},
        )

    def report(self, host_id: str, update: BackendUpdate) -> None:
        """Write to a host record as the backend does (a milestone, a heartbeat)."""
        self.client("dynamodb").update_item(
            TableName=self.table_name,
            Key={PARTITION_KEY: {"S": host_key(host_id)}},
            UpdateExpression=update.expression,
            ConditionExpression=f"attribute_exists({PARTITION_KEY})",
            ExpressionAttributeValues={k: encode(v) for k, v in update.values.items()},
        )

    def report_ready(self, host_id: str, at: float) -> None:
        """Host `host_id`'s backend came up, loaded its models and warmed up, by `at`."""
        for step, milestone in zip((2.0, 1.0, 0.0), Milestone, strict=True):
            self.report(host_id, milestone_update(milestone, at - step))

    def _item(self, key: str) -> dict[str, Any]:
        item = self.client("dynamodb").get_item(
            TableName=self.table_name, Key={PARTITION_KEY: {"S": key}}, ConsistentRead=True
        )["Item"]
        decoded = decode_item(item)
        decoded.pop(PARTITION_KEY, None)
        return decoded


def create_fleet(aws: Aws) -> None:
    """A VPC with one public subnet (instances get a public DNS name: the origin), a launch
    template and the GPU group (min 0, max MAX_HOSTS, new instances protected from scale-in,
    no desired capacity of its own: reconcile owns it)."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")[
        "Subnet"
    ]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    ec2.create_launch_template(
        LaunchTemplateName=f"{aws.group_name}-template",
        LaunchTemplateData={"ImageId": IMAGE_ID, "InstanceType": TYPES[0]},
    )
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=aws.group_name,
        LaunchTemplate={"LaunchTemplateName": f"{aws.group_name}-template", "Version": "$Latest"},
        MinSize=0,
        MaxSize=MAX_HOSTS,
        VPCZoneIdentifier=subnet,
        NewInstancesProtectedFromScaleIn=True,
    )


# --- the API, as a page uses it ------------------------------------------------------------


async def start(api: httpx.AsyncClient, issuer: Issuer, user: str = "alice") -> str:
    """POST /api/sessions: the new session's id."""
    response = await api.post("/api/sessions", headers=issuer.headers(user))
    assert response.status_code == 202, response.text
    session_id: str = response.json()["session_id"]
    return session_id


async def status(api: httpx.AsyncClient, issuer: Issuer, user: str = "alice") -> dict[str, Any]:
    response = await api.get("/api/status", headers=issuer.headers(user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def settle(settings: Settings, clients: Clients, now: float, *, limit: int = 8) -> list[str]:
    """Reconcile (as the schedule and the events do) until a reconcile changes nothing; what
    was done, in order."""
    done: list[str] = []
    for _ in range(limit):
        step = reconcile_once(settings, clients, now).done
        if not step:
            return done
        done += step
    raise AssertionError(f"reconcile still acting after {limit} rounds: {done}")


def host_of(aws: Aws, user: str, session_id: str) -> str | None:
    """The host session `session_id` is placed on, as the fleet record says."""
    lease = aws.fleet().sessions_of(user).get(session_id)
    assert lease is not None, f"no lease {session_id} of {user}"
    return lease.host_id


async def ready_session(
    api: httpx.AsyncClient, issuer: Issuer, aws: Aws, clock: Clock, user: str = "alice"
) -> tuple[str, str]:
    """A session of `user` on a host that became ready 120 s after its start: (session, host)."""
    session = await start(api, issuer, user)
    await status(api, issuer, user)
    await status(api, issuer, user)
    host = host_of(aws, user, session)
    assert host is not None
    aws.report_ready(host, clock.advance(120))
    assert (await status(api, issuer, user))["phase"] == "ready"
    return session, host
