"""The preflight's checks over gathered facts, table-driven."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.config import DeployConfig
from infra.preflight.checks import Facts, check_image, check_quota, check_zones, run_checks

CONFIG = DeployConfig(instance_types=("g4dn.xlarge", "g5.2xlarge"), max_hosts=3)
VCPUS = {"g4dn.xlarge": 4, "g5.2xlarge": 8}
GOOD = Facts(
    region="us-east-1",
    gpu_vcpu_quota=24,
    vcpus=VCPUS,
    offerings={
        "us-east-1a": frozenset({"g4dn.xlarge"}),
        "us-east-1b": frozenset({"g4dn.xlarge", "g5.2xlarge"}),
    },
    image_id="ami-0123456789abcdef0",
    unreadable={},
)


def test_a_ready_account_passes_every_check() -> None:
    assert [r.ok for r in run_checks(CONFIG, GOOD)] == [True, True, True]


@pytest.mark.parametrize(
    ("quota", "vcpus", "ok", "says"),
    [
        (24, VCPUS, True, "24 vCPUs, 24 needed (3 × g5.2xlarge, 8)"),
        (23, VCPUS, False, "request an increase"),
        (0, VCPUS, False, "0 vCPUs, 24 needed"),
        (None, VCPUS, False, "could not read it"),
        (64, {"g4dn.xlarge": 4}, False, "does not know the types ['g5.2xlarge']"),
    ],
)
def test_quota_covers_max_hosts_of_the_largest_type(
    quota: float | None, vcpus: dict[str, int], ok: bool, says: str
) -> None:
    result = check_quota(CONFIG, replace(GOOD, gpu_vcpu_quota=quota, vcpus=vcpus))
    assert (result.ok, says in result.message) == (ok, True), result.message


@pytest.mark.parametrize(
    ("offerings", "zones", "ok"),
    [
        ({"us-east-1a": {"g4dn.xlarge"}, "us-east-1b": {"g5.2xlarge"}}, None, True),
        ({"us-east-1a": {"g4dn.xlarge"}}, None, False),
        ({}, None, False),
        # Named zones: only they count.
        (
            {"us-east-1a": {"g4dn.xlarge"}, "us-east-1c": {"g4dn.xlarge"}},
            ("us-east-1a", "us-east-1b"),
            False,
        ),
        (
            {"us-east-1a": {"g4dn.xlarge"}, "us-east-1b": {"g4dn.xlarge"}},
            ("us-east-1a", "us-east-1b"),
            True,
        ),
    ],
)
def test_at_least_two_zones_offer_a_type(
    offerings: dict[str, set[str]], zones: tuple[str, ...] | None, ok: bool
) -> None:
    facts = replace(GOOD, offerings={z: frozenset(t) for z, t in offerings.items()})
    result = check_zones(replace(CONFIG, availability_zones=zones), facts)
    assert result.ok is ok, result.message


def test_unreadable_offerings_fail_with_the_reason() -> None:
    facts = replace(GOOD, offerings={}, unreadable={"offerings": "AccessDenied"})
    result = check_zones(CONFIG, facts)
    assert not result.ok
    assert "AccessDenied" in result.message


@pytest.mark.parametrize(
    ("pinned", "image", "ok", "says"),
    [
        (None, "ami-0123456789abcdef0", True, "ami-0123456789abcdef0"),
        (None, None, False, "does not resolve"),
        ("ami-0fedcba9876543210", None, True, "pinned"),
    ],
)
def test_the_image_parameter_resolves_unless_pinned(
    pinned: str | None, image: str | None, ok: bool, says: str
) -> None:
    result = check_image(replace(CONFIG, machine_image_id=pinned), replace(GOOD, image_id=image))
    assert (result.ok, says in result.message) == (ok, True), result.message


def test_lines_say_pass_or_fail_and_the_check() -> None:
    bad = replace(GOOD, gpu_vcpu_quota=4)
    lines = [r.line() for r in run_checks(CONFIG, bad)]
    assert lines[0].startswith("FAIL GPU vCPU quota (L-DB2E81BA): ")
    assert lines[1].startswith("PASS instance types per zone: ")
