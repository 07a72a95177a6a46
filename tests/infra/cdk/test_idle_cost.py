"""Idle cost at list prices, computed from the synthesized templates (issue 9: ≤ $5/month with
the defaults), and the model that computes it, on small hand-written templates."""

from __future__ import annotations

from typing import Any

import pytest

from infra.costs import (
    IDLE_BUDGET_USD,
    IdleAssumptions,
    idle_cost,
    load_prices,
    load_templates,
    render,
)
from tests.infra.cdk.cdk_synth_support import Synthesized

PRICES = load_prices()


def test_the_defaults_cost_at_most_the_budget_while_idle(synthesized: Synthesized) -> None:
    cost = idle_cost(load_templates(synthesized.outdir), PRICES)
    assert cost.unpriced == (), "price these resource types or name them free at idle"
    assert cost.total_usd <= IDLE_BUDGET_USD, render(cost, PRICES)


def test_the_warm_hosts_volume_is_the_configured_root(synthesized: Synthesized) -> None:
    cost = idle_cost(load_templates(synthesized.outdir), PRICES)
    expected = synthesized.config.root_volume_gib * PRICES["gp3_gb_month"]
    assert cost.per_warm_host_usd == pytest.approx(expected)
    (pool,) = [item for item in cost.items if item.what.startswith("warm pool")]
    assert pool.usd == pytest.approx(synthesized.config.warm_hosts * expected)


def test_every_price_names_its_source() -> None:
    assert PRICES.region == "us-east-1"
    for name, price in PRICES.prices.items():
        assert price.usd > 0, name
        assert price.source.startswith("https://aws.amazon.com/"), name


# --- the model, on hand-written templates --------------------------------------------------


def _fleet(*, min_size: int, prepared: int | None, max_size: int, gib: int) -> dict[str, Any]:
    pool: dict[str, Any] = {"AutoScalingGroupName": {"Ref": "Group"}, "MinSize": min_size}
    if prepared is not None:
        pool["MaxGroupPreparedCapacity"] = prepared
    return {
        "Resources": {
            "Template": {
                "Type": "AWS::EC2::LaunchTemplate",
                "Properties": {
                    "LaunchTemplateData": {
                        "BlockDeviceMappings": [
                            {
                                "DeviceName": "/dev/xvda",
                                "Ebs": {"VolumeSize": gib, "VolumeType": "gp3"},
                            }
                        ]
                    }
                },
            },
            "Group": {
                "Type": "AWS::AutoScaling::AutoScalingGroup",
                "Properties": {
                    "MaxSize": str(max_size),
                    "MixedInstancesPolicy": {
                        "LaunchTemplate": {
                            "LaunchTemplateSpecification": {"LaunchTemplateId": {"Ref": "Template"}}
                        }
                    },
                },
            },
            "Pool": {"Type": "AWS::AutoScaling::WarmPool", "Properties": pool},
        }
    }


@pytest.mark.parametrize(
    ("min_size", "prepared", "max_size", "hosts"),
    [
        (1, 1, 2, 1),  # the app's pool: exactly `warmHosts`
        (2, 2, 4, 2),
        (0, None, 3, 3),  # no MaxGroupPreparedCapacity: max size - desired (0 at idle)
        (2, 1, 4, 2),  # MinSize wins
    ],
)
def test_warm_pool_hosts_times_their_volume(
    min_size: int, prepared: int | None, max_size: int, hosts: int
) -> None:
    templates = {"gpu": _fleet(min_size=min_size, prepared=prepared, max_size=max_size, gib=40)}
    cost = idle_cost(templates, PRICES)
    assert cost.per_warm_host_usd == pytest.approx(40 * 0.08)
    assert cost.total_usd == pytest.approx(hosts * 40 * 0.08)


def _scheduled(expression: str, *, memory: int, arch: str = "x86_64") -> dict[str, Any]:
    return {
        "Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "MemorySize": memory,
                    "Architectures": [arch],
                    "LoggingConfig": {"LogGroup": {"Ref": "Logs"}},
                },
            },
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "ScheduleExpression": expression,
                    "Targets": [{"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}, "Id": "T"}],
                },
            },
        }
    }


@pytest.mark.parametrize(
    ("expression", "invocations"),
    [("rate(1 minute)", 43_800), ("rate(5 minutes)", 8_760), ("rate(1 hour)", 730)],
)
def test_a_schedule_is_priced_per_invocation_at_its_memory(
    expression: str, invocations: int
) -> None:
    assumptions = IdleAssumptions(invocation_s=0.5, log_bytes_per_invocation=0)
    cost = idle_cost({"c": _scheduled(expression, memory=1024)}, PRICES, assumptions)
    (function,) = [item for item in cost.items if item.resource == "Fn"]
    assert function.usd == pytest.approx(
        invocations * (0.0000002 + 1.0 * 0.5 * 0.0000166667), rel=1e-6
    )


def test_the_schedule_s_log_group_pays_ingestion_and_what_retention_keeps() -> None:
    assumptions = IdleAssumptions(log_bytes_per_invocation=1000)
    cost = idle_cost({"c": _scheduled("rate(1 minute)", memory=128)}, PRICES, assumptions)
    (logs,) = [item for item in cost.items if item.resource == "Logs"]
    ingested_gb = 43_800 * 1000 / 1e9
    kept_gb = ingested_gb / (730 / 24) * 30
    assert logs.usd == pytest.approx(ingested_gb * 0.50 + kept_gb * 0.03)


def test_reads_of_the_schedule_reach_a_store_of_another_stack() -> None:
    hosting = {"Resources": {"Kvs": {"Type": "AWS::CloudFront::KeyValueStore"}}}
    templates = {"control": _scheduled("rate(1 minute)", memory=128), "hosting": hosting}
    assumptions = IdleAssumptions(kvs_calls_per_invocation=2)
    cost = idle_cost(templates, PRICES, assumptions)
    (store,) = [item for item in cost.items if item.resource == "Kvs"]
    assert store.usd == pytest.approx(2 * 43_800 * PRICES["kvs_api_call"])


@pytest.mark.parametrize(
    ("period", "metrics", "usd"),
    [(300, None, 0.10), (10, None, 0.30), (300, 3, 0.30)],
)
def test_an_alarm_costs_per_metric_and_resolution(
    period: int, metrics: int | None, usd: float
) -> None:
    props: dict[str, Any] = {"Period": period}
    if metrics is None:
        props["MetricName"] = "Errors"
    else:
        props["Metrics"] = [{"Id": f"m{i}", "MetricStat": {}} for i in range(metrics)]
    templates = {"c": {"Resources": {"A": {"Type": "AWS::CloudWatch::Alarm", "Properties": props}}}}
    assert idle_cost(templates, PRICES).total_usd == pytest.approx(usd)


@pytest.mark.parametrize(
    ("kind", "usd"),
    [
        ("AWS::SecretsManager::Secret", 0.40),
        ("AWS::EC2::EIP", 3.65),
        ("AWS::KMS::Key", 1.00),
        ("AWS::IAM::Role", 0.0),
    ],
)
def test_fixed_items(kind: str, usd: float) -> None:
    templates = {"s": {"Resources": {"R": {"Type": kind}}}}
    assert idle_cost(templates, PRICES).total_usd == pytest.approx(usd)


def test_a_resource_type_it_does_not_know_is_reported_not_ignored() -> None:
    templates = {"s": {"Resources": {"Nat": {"Type": "AWS::EC2::NatGateway"}}}}
    assert idle_cost(templates, PRICES).unpriced == (("s", "Nat", "AWS::EC2::NatGateway"),)
