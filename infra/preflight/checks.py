"""The preflight's decisions: pure functions of the gathered facts and the deploy config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.config import MIN_ZONES, DeployConfig

GPU_QUOTA_CODE = "L-DB2E81BA"
"""Service Quotas: "Running On-Demand G and VT instances", counted in vCPUs
(https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html)."""


@dataclass(frozen=True)
class Facts:
    """What the account and region say; None where it could not be read (the reason instead)."""

    region: str
    gpu_vcpu_quota: float | None
    vcpus: Mapping[str, int]
    """vCPUs of each configured type the region knows."""
    offerings: Mapping[str, frozenset[str]]
    """Availability zone → the configured types it offers."""
    image_id: str | None
    unreadable: Mapping[str, str]
    """Fact name → why it could not be read (an API error, a missing permission)."""


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.message}"


def check_quota(config: DeployConfig, facts: Facts) -> Result:
    """Every host of the fleet may run at once, of the largest type: `maxHosts` × its vCPUs."""
    name = f"GPU vCPU quota ({GPU_QUOTA_CODE})"
    unknown = [t for t in config.instance_types if t not in facts.vcpus]
    if unknown:
        return Result(name, False, f"{facts.region} does not know the types {unknown}")
    largest = max(config.instance_types, key=lambda t: facts.vcpus[t])
    needed = config.max_hosts * facts.vcpus[largest]
    if facts.gpu_vcpu_quota is None:
        why = facts.unreadable.get("quota", "not readable")
        return Result(name, False, f"could not read it ({why}); {needed} vCPUs needed")
    have = int(facts.gpu_vcpu_quota)
    detail = (
        f"{have} vCPUs, {needed} needed ({config.max_hosts} × {largest}, {facts.vcpus[largest]})"
    )
    if have < needed:
        return Result(name, False, f"{detail}: request an increase in Service Quotas")
    return Result(name, True, detail)


def check_zones(config: DeployConfig, facts: Facts) -> Result:
    """At least `MIN_ZONES` zones (the configured ones, if named) offer at least one type."""
    name = "instance types per zone"
    if "offerings" in facts.unreadable:
        return Result(name, False, f"could not read them ({facts.unreadable['offerings']})")
    zones = config.availability_zones or tuple(sorted(facts.offerings))
    serving = {zone: sorted(facts.offerings.get(zone, ())) for zone in zones}
    good = [zone for zone, types in serving.items() if types]
    detail = "; ".join(f"{zone}: {', '.join(types) or 'none'}" for zone, types in serving.items())
    if len(good) < MIN_ZONES:
        return Result(
            name,
            False,
            f"{len(good)} zone(s) offer one of {', '.join(config.instance_types)}, "
            f"{MIN_ZONES} needed ({detail or 'no zone'})",
        )
    return Result(name, True, detail)


def check_image(config: DeployConfig, facts: Facts) -> Result:
    name = "host image"
    if config.machine_image_id is not None:
        return Result(name, True, f"pinned to {config.machine_image_id}")
    parameter = config.machine_image_ssm_parameter
    if facts.image_id is None:
        why = facts.unreadable.get("image", "no value")
        return Result(name, False, f"{parameter} does not resolve ({why})")
    return Result(name, True, f"{parameter} → {facts.image_id}")


def run_checks(config: DeployConfig, facts: Facts) -> list[Result]:
    return [check(config, facts) for check in (check_quota, check_zones, check_image)]
