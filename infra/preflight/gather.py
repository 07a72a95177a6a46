"""The preflight's facts, read with boto3: one call (or paginator) per fact, each failure kept
as the reason the fact is unknown, so that the checks can say what was not readable."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.config import DeployConfig
from infra.preflight.checks import GPU_QUOTA_CODE, Facts


def gather(config: DeployConfig, region: str, session: Any) -> Facts:
    """`session`: a boto3 Session (its credentials and this region)."""
    ec2 = session.client("ec2", region_name=region)
    unreadable: dict[str, str] = {}
    quota = _read(unreadable, "quota", lambda: _gpu_quota(session, region))
    vcpus = _read(unreadable, "vcpus", lambda: _vcpus(ec2, config.instance_types)) or {}
    offerings = _read(unreadable, "offerings", lambda: _offerings(ec2, config.instance_types))
    image = None
    if config.machine_image_id is None:
        ssm = session.client("ssm", region_name=region)
        image = _read(
            unreadable,
            "image",
            lambda: ssm.get_parameter(Name=config.machine_image_ssm_parameter)["Parameter"][
                "Value"
            ],
        )
    return Facts(
        region=region,
        gpu_vcpu_quota=quota,
        vcpus=vcpus,
        offerings=offerings or {},
        image_id=image,
        unreadable=unreadable,
    )


def _read(unreadable: dict[str, str], name: str, read: Any) -> Any:
    try:
        return read()
    except (ClientError, BotoCoreError) as error:
        unreadable[name] = str(error)
        return None


def _gpu_quota(session: Any, region: str) -> float:
    """The applied value (the account's, after any increase)
    (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html)."""
    quotas = session.client("service-quotas", region_name=region)
    answer = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=GPU_QUOTA_CODE)
    return float(answer["Quota"]["Value"])


def _vcpus(ec2: Any, types: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    for page in ec2.get_paginator("describe_instance_types").paginate(InstanceTypes=list(types)):
        for item in page["InstanceTypes"]:
            found[item["InstanceType"]] = int(item["VCpuInfo"]["DefaultVCpus"])
    return found


def _offerings(ec2: Any, types: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """Zone → the configured types it offers
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypeOfferings.html)."""
    zones: dict[str, set[str]] = {}
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    for page in paginator.paginate(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": list(types)}],
    ):
        for offer in page["InstanceTypeOfferings"]:
            zones.setdefault(offer["Location"], set()).add(offer["InstanceType"])
    return {zone: frozenset(found) for zone, found in zones.items()}
