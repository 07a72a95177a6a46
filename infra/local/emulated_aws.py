"""moto's server standing in for EC2 and DynamoDB, and the emulated GPU instance in it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import boto3
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

log = logging.getLogger(__name__)

INSTANCE_NAME = "spinup-local-gpu"


def start_moto(*, bind: str, port: int) -> tuple[ThreadedMotoServer, str]:
    """Start moto's server in this process; returns it and its endpoint URL."""
    server = ThreadedMotoServer(ip_address=bind, port=port, verbose=False)
    server.start()
    host, actual_port = server.get_host_and_port()
    return server, f"http://{host}:{actual_port}"


def ec2_client(*, endpoint: str, region: str) -> EC2Client:
    return boto3.client("ec2", endpoint_url=endpoint, region_name=region)


def create_stopped_instance(ec2: EC2Client, *, image_id: str, instance_type: str) -> str:
    """The emulated GPU instance, stopped, as `cdk deploy` leaves it once reconciled."""
    reservation = ec2.run_instances(
        ImageId=image_id,
        InstanceType=instance_type,  # type: ignore[arg-type]  # any string is a type to moto
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": INSTANCE_NAME}]}
        ],
    )
    instance_id = reservation["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance_id])
    log.info("emulated GPU instance %s (%s), stopped", instance_id, instance_type)
    return instance_id


def instance_state(ec2: EC2Client, instance_id: str) -> str | None:
    """The instance's state name, or None when it does not exist."""
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    for reservation in reservations:
        for instance in reservation["Instances"]:
            return instance["State"]["Name"]
    return None
