"""The preflight's boto3 gathering and command against moto.

moto 5.2's Service Quotas knows only VPC quotas: the GPU quota is seeded at moto's backend
(`get_service_quota`), so the real boto3 call and its parsing still run. moto answers the EC2
instance types, their offerings per zone and the public ECS AMI parameters from its own
catalogue.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.servicequotas.models import ServiceQuotasBackend

from infra.config import DeployConfig
from infra.preflight.__main__ import main
from infra.preflight.checks import GPU_QUOTA_CODE, run_checks
from infra.preflight.gather import gather

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def _seed_quota(monkeypatch: pytest.MonkeyPatch, vcpus: float) -> None:
    original = ServiceQuotasBackend.get_service_quota

    def get(self: ServiceQuotasBackend, service_code: str, quota_code: str) -> dict[str, Any]:
        if (service_code, quota_code) == ("ec2", GPU_QUOTA_CODE):
            return {"ServiceCode": "ec2", "QuotaCode": quota_code, "Value": vcpus}
        return original(self, service_code, quota_code)

    monkeypatch.setattr(ServiceQuotasBackend, "get_service_quota", get)


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(("quota", "ok"), [(16.0, True), (4.0, False)])
def test_gathered_facts_pass_or_fail_the_quota(
    monkeypatch: pytest.MonkeyPatch, quota: float, ok: bool
) -> None:
    config = DeployConfig(instance_types=("g4dn.xlarge", "g5.xlarge"), max_hosts=2)
    _seed_quota(monkeypatch, quota)
    facts = gather(config, REGION, boto3.Session())
    assert facts.gpu_vcpu_quota == quota
    assert facts.vcpus == {"g4dn.xlarge": 4, "g5.xlarge": 4}
    assert len([zone for zone, types in facts.offerings.items() if types]) >= 2
    assert (facts.image_id or "").startswith("ami-")
    assert [r.ok for r in run_checks(config, facts)] == [ok, True, True]


@pytest.mark.usefixtures("aws")
def test_without_the_quota_and_the_image_the_facts_say_why() -> None:
    config = DeployConfig(machine_image_ssm_parameter="/spinup-test/no-such-image")
    facts = gather(config, REGION, boto3.Session())
    assert facts.gpu_vcpu_quota is None
    assert "quota" in facts.unreadable
    assert facts.image_id is None
    assert "ParameterNotFound" in facts.unreadable["image"]


@pytest.mark.usefixtures("aws")
def test_the_command_prints_a_line_per_check_and_exits_nonzero_on_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed_quota(monkeypatch, 2.0)
    assert main(["--region", REGION]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["FAIL", "PASS", "PASS"]
    assert "GPU vCPU quota" in lines[0]
