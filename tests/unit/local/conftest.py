"""The emulated account the fleet tests run against: moto in this process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from infra.local.fleet import EmulatedFleet

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client

REGION = "us-east-1"
TYPE = "g4dn.xlarge"
T0 = 1_800_000_000.0
HEARTBEAT_S = 300


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def origin(slot: int) -> str:
    return f"127.0.0.1:{9000 + slot}"


@dataclass
class Aws:
    autoscaling: AutoScalingClient
    ec2: EC2Client
    clock: Clock
    group: str

    def fleet(self, *, max_size: int = 2, warm: int = 1) -> EmulatedFleet:
        return EmulatedFleet.create(
            autoscaling=self.autoscaling,
            ec2=self.ec2,
            group_name=self.group,
            image_id="ami-0123456789abcdef0",
            instance_type=TYPE,
            max_size=max_size,
            warm_pool_size=warm,
            origin_of_slot=origin,
            heartbeat_timeout_s=HEARTBEAT_S,
            clock=self.clock,
        )


@pytest.fixture(scope="module")
def account() -> Iterator[tuple[AutoScalingClient, EC2Client]]:
    """One emulated account per module (starting moto is the slow part): each test has its
    own group, and a fleet only ever touches its own group's instances."""
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        yield session.client("autoscaling"), session.client("ec2")


@pytest.fixture
def aws(account: tuple[AutoScalingClient, EC2Client]) -> Aws:
    return Aws(*account, Clock(), f"spinup-test-{uuid.uuid4().hex[:8]}")
