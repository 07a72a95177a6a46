"""The AWS adapters of one process, created once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.config import Config

from lambdas.aws.fleet import AutoScalingFleet, FleetGateway
from lambdas.aws.routes import KeyValueStoreRoutes, RouteTable
from lambdas.aws.store import ControlStore
from lambdas.settings import Settings

_BOTO_CONFIG = Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"max_attempts": 3, "mode": "standard"},
)
"""Short timeouts: an API request waits on these calls, and reconcile runs again soon anyway."""


@dataclass(frozen=True)
class Clients:
    fleet: FleetGateway
    routes: RouteTable
    store: ControlStore


def make_clients(
    settings: Settings,
    session: boto3.session.Session | None = None,
    *,
    fleet: FleetGateway | None = None,
    routes: RouteTable | None = None,
) -> Clients:
    """`session` defaults to a new one with the default credential chain. The local mode
    passes its emulated `fleet` and `routes` (moto has neither a warm pool nor a KeyValueStore
    data plane); in AWS they are built from the settings."""
    session = session or boto3.session.Session(region_name=settings.aws_region)
    endpoint = settings.aws_endpoint_url or None
    region = settings.aws_region

    if fleet is None:
        fleet = AutoScalingFleet(
            session.client(
                "autoscaling", region_name=region, endpoint_url=endpoint, config=_BOTO_CONFIG
            ),
            session.client("ec2", region_name=region, endpoint_url=endpoint, config=_BOTO_CONFIG),
            settings.group_name,
        )
    if routes is None:
        if not settings.kvs_arn:
            raise ValueError("SPINUP_KVS_ARN is required unless the routes are given")
        routes = KeyValueStoreRoutes(
            session.client("cloudfront-keyvaluestore", region_name=region, config=_BOTO_CONFIG),
            settings.kvs_arn,
        )
    dynamodb = session.client(
        "dynamodb", region_name=region, endpoint_url=endpoint, config=_BOTO_CONFIG
    )
    return Clients(fleet=fleet, routes=routes, store=ControlStore(dynamodb, settings.table_name))
