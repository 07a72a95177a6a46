"""moto's server standing in for EC2, Auto Scaling and DynamoDB, and the clients to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client


def start_moto(*, bind: str, port: int) -> tuple[ThreadedMotoServer, str]:
    """Start moto's server in this process; returns it and its endpoint URL."""
    server = ThreadedMotoServer(ip_address=bind, port=port, verbose=False)
    server.start()
    host, actual_port = server.get_host_and_port()
    return server, f"http://{host}:{actual_port}"


def ec2_client(*, endpoint: str, region: str) -> EC2Client:
    return boto3.client("ec2", endpoint_url=endpoint, region_name=region)


def autoscaling_client(*, endpoint: str, region: str) -> AutoScalingClient:
    return boto3.client("autoscaling", endpoint_url=endpoint, region_name=region)
