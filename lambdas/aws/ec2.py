"""The thin EC2 adapter: one instance, four calls. No decisions here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from lambdas.domain.model import InstanceView

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

_NOT_FOUND = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


class Ec2Gateway:
    def __init__(self, client: EC2Client, instance_id: str) -> None:
        self.client = client
        self.instance_id = instance_id

    def describe(self) -> InstanceView | None:
        """The instance as EC2 sees it now; None if EC2 does not know the id."""
        try:
            answer = self.client.describe_instances(InstanceIds=[self.instance_id])
        except ClientError as error:
            if error_code(error) in _NOT_FOUND:
                return None
            raise
        found = [i for r in answer.get("Reservations", []) for i in r.get("Instances", [])]
        if not found:
            return None
        instance = found[0]
        launched = instance.get("LaunchTime")
        return InstanceView(
            instance_id=self.instance_id,
            state=instance["State"]["Name"],
            instance_type=instance["InstanceType"],
            launch_time=launched.timestamp() if launched else None,
            zone=instance.get("Placement", {}).get("AvailabilityZone"),
        )

    def start(self) -> None:
        self.client.start_instances(InstanceIds=[self.instance_id])

    def stop(self) -> None:
        self.client.stop_instances(InstanceIds=[self.instance_id])

    def set_instance_type(self, instance_type: str) -> None:
        """Change the type of the stopped instance (same AZ, same volumes)."""
        self.client.modify_instance_attribute(
            InstanceId=self.instance_id, InstanceType={"Value": instance_type}
        )
