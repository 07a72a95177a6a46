"""The AWS adapters of one process, created once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.config import Config

from lambdas.aws.ec2 import Ec2Gateway
from lambdas.aws.store import HostStore
from lambdas.settings import Settings

_BOTO_CONFIG = Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"max_attempts": 3, "mode": "standard"},
)
"""Short timeouts: an API request waits on these calls, and reconcile runs again soon anyway."""


@dataclass(frozen=True)
class Clients:
    ec2: Ec2Gateway
    store: HostStore


def make_clients(settings: Settings, session: boto3.session.Session | None = None) -> Clients:
    """`session` defaults to a new one with the default credential chain."""
    session = session or boto3.session.Session(region_name=settings.aws_region)
    endpoint = settings.aws_endpoint_url or None
    region = settings.aws_region
    ec2 = session.client("ec2", region_name=region, endpoint_url=endpoint, config=_BOTO_CONFIG)
    dynamodb = session.client(
        "dynamodb", region_name=region, endpoint_url=endpoint, config=_BOTO_CONFIG
    )
    return Clients(
        ec2=Ec2Gateway(ec2, settings.instance_id),
        store=HostStore(dynamodb, settings.table_name, settings.host_id, settings.instance_id),
    )
