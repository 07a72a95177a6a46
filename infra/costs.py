"""What the deployment costs per month while nobody uses it, at list prices, read from the
synthesized templates (`cdk.out`) and the dated price table `infra/prices.json`.

Idle means: no session, no GPU running, the warm pool full (desired capacity 0). What is
billed then is what exists (secrets, alarms, the warm hosts' root volumes, stored bytes) and
what runs on a schedule (the reconcile Lambda every period, with its log lines and its reads).
Everything billed per request (CloudFront, API Gateway, Cognito, Lambda on requests) is 0.

Every resource type of the templates is either priced here or named free at idle; a type
that is neither is reported as unpriced, so that a new resource cannot slip past the budget.

`python -m infra.costs [--cdk-out DIR]` prints the breakdown of a `make synth` output.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from infra.paths import REPO_ROOT

PRICE_TABLE: Final = REPO_ROOT / "infra" / "prices.json"
IDLE_BUDGET_USD: Final = 5.0
"""Issue 9: the defaults (one warm host) must cost at most this per month while idle."""

HOURS_PER_MONTH: Final = 730
"""AWS's pricing pages and calculator count a month as 730 hours."""
MINUTES_PER_MONTH: Final = HOURS_PER_MONTH * 60
DAYS_PER_MONTH: Final = HOURS_PER_MONTH / 24
GB: Final = 1e9

FREE_AT_IDLE: Final = frozenset(
    {
        # Billed per request, per use or per active user: 0 while nobody uses the app.
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Authorizer",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Stage",
        "AWS::CloudFront::Distribution",
        "AWS::CloudFront::Function",
        "AWS::CloudFront::OriginAccessControl",
        "AWS::CloudFront::ResponseHeadersPolicy",
        "AWS::Cognito::UserPool",
        "AWS::Cognito::UserPoolClient",
        "AWS::Cognito::UserPoolDomain",
        "AWS::Lambda::Function",  # its scheduled invocations are priced with the schedule
        "AWS::Lambda::Permission",
        "AWS::Lambda::LayerVersion",
        # Schedules and AWS service events are free to deliver (EventBridge pricing).
        "AWS::Events::Rule",
        # No charge of their own.
        "AWS::AutoScaling::AutoScalingGroup",  # its instances: the warm pool's volumes
        "AWS::EC2::FlowLog",  # rejected flows of stopped hosts: none; the log group's bytes
        "AWS::EC2::InternetGateway",
        "AWS::EC2::LaunchTemplate",
        "AWS::EC2::Route",
        "AWS::EC2::RouteTable",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::Subnet",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::VPC",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::IAM::InstanceProfile",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::S3::BucketPolicy",
        "AWS::SSM::Parameter",  # standard tier
        "AWS::CDK::Metadata",
    }
)
"""Resource types that cost nothing while idle (the comment says why)."""

PRICED: Final = frozenset(
    {
        "AWS::SecretsManager::Secret",
        "AWS::CloudWatch::Alarm",
        "AWS::Logs::LogGroup",
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::CloudFront::KeyValueStore",
        "AWS::AutoScaling::WarmPool",
        "AWS::EC2::EIP",
        "AWS::KMS::Key",
    }
)


@dataclass(frozen=True, kw_only=True)
class IdleAssumptions:
    """What the templates cannot say; estimates until a deployment's bill confirms them."""

    invocation_s: float = 1.0
    """Billed duration of one scheduled reconcile at idle: one DynamoDB read, two Auto
    Scaling describes and one KeyValueStore listing, ~0.3-0.6 s warm; 1 s covers cold starts."""
    log_bytes_per_invocation: int = 1500
    """The Lambda platform's START/END/REPORT lines (~350 bytes) plus reconcile's JSON lines."""
    read_units_per_invocation: float = 2.0
    """The fleet record read strongly consistent (1 unit per 4 KB) and the host records of an
    empty fleet (none): 2 is a margin."""
    kvs_calls_per_invocation: float = 0.0
    """Reconcile never lists the routes: it reads what it wrote from the fleet record
    (`lambdas/reconcile/service.py`, `read_snapshot`) and calls the store only to write a
    route when a host runs or delete it when the host leaves — never while the fleet idles."""
    table_gb: float = 0.001
    """The control table: a fleet record, budget counters, a host record per host."""
    bucket_gb: float = 0.001
    """Each bucket: the site (~0.2 MB of pages) or a few access logs."""


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str
    confirm: bool = False


@dataclass(frozen=True)
class PriceTable:
    region: str
    checked: str
    prices: Mapping[str, Price]

    def __getitem__(self, name: str) -> float:
        return self.prices[name].usd


def load_prices(path: Path = PRICE_TABLE) -> PriceTable:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return PriceTable(
        region=raw["region"],
        checked=raw["checked"],
        prices={name: Price(**entry) for name, entry in raw["prices"].items()},
    )


@dataclass(frozen=True)
class CostItem:
    stack: str
    resource: str
    """The logical id (or ids) in the template."""
    what: str
    usd: float
    basis: str
    """How the figure was computed, in words an operator can check."""


@dataclass(frozen=True)
class IdleCost:
    items: tuple[CostItem, ...]
    unpriced: tuple[tuple[str, str, str], ...]
    """(stack, logical id, type) of resources neither priced nor known to be free."""
    per_warm_host_usd: float
    """What each further warm host adds: its root volume."""

    @property
    def total_usd(self) -> float:
        return sum(item.usd for item in self.items)


@dataclass
class _Stack:
    name: str
    resources: Mapping[str, Mapping[str, Any]]
    items: list[CostItem] = field(default_factory=list)

    def typed(self, resource_type: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource["Type"] == resource_type:
                yield logical_id, resource.get("Properties", {})


def load_templates(cdk_out: Path) -> dict[str, dict[str, Any]]:
    """Stack name → template, from a cloud assembly directory."""
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(cdk_out.glob("*.template.json"))
    }
    if not templates:
        raise FileNotFoundError(f"no *.template.json in {cdk_out}: run `make synth` first")
    return templates


def idle_cost(
    templates: Mapping[str, Mapping[str, Any]],
    prices: PriceTable,
    assumptions: IdleAssumptions = IdleAssumptions(),
) -> IdleCost:
    items: list[CostItem] = []
    unpriced: list[tuple[str, str, str]] = []
    per_warm_host = 0.0
    stacks = [_Stack(name, template.get("Resources", {})) for name, template in templates.items()]
    # The schedule's reads land on resources of other stacks (the routes' store is hosting's).
    invocations = sum(
        count for stack in stacks for _, count in _scheduled_functions(stack).values()
    )
    for stack in stacks:
        name = stack.name
        for logical_id, resource in stack.resources.items():
            kind = resource["Type"]
            if kind not in FREE_AT_IDLE and kind not in PRICED and not kind.startswith("Custom::"):
                unpriced.append((name, logical_id, kind))
        scheduled = _scheduled_functions(stack)
        _secrets(stack, prices)
        _alarms(stack, prices)
        _schedules(stack, scheduled, prices, assumptions)
        _log_groups(stack, scheduled, prices, assumptions)
        _tables(stack, invocations, prices, assumptions)
        _key_value_stores(stack, invocations, prices, assumptions)
        _buckets(stack, prices, assumptions)
        _addresses_and_keys(stack, prices)
        per_warm_host = max(per_warm_host, _warm_pools(stack, prices))
        items.extend(stack.items)
    return IdleCost(tuple(items), tuple(unpriced), per_warm_host)


# --- one function per kind of item ------------------------------------------------------


def _secrets(stack: _Stack, prices: PriceTable) -> None:
    for logical_id, _ in stack.typed("AWS::SecretsManager::Secret"):
        stack.items.append(
            CostItem(stack.name, logical_id, "Secrets Manager secret", prices["secret_month"],
                     "1 secret-month")
        )  # fmt: skip


def _alarms(stack: _Stack, prices: PriceTable) -> None:
    """Alarms are billed per metric they evaluate; a period under 60 s is high resolution."""
    for logical_id, props in stack.typed("AWS::CloudWatch::Alarm"):
        metrics = 1 if "MetricName" in props else _math_metrics(props)
        high = int(props.get("Period", 60)) < 60
        price = prices["alarm_high_resolution_month" if high else "alarm_standard_month"]
        kind = "high-resolution" if high else "standard"
        stack.items.append(
            CostItem(stack.name, logical_id, "CloudWatch alarm", metrics * price,
                     f"{metrics} metric(s) × {kind} alarm-month")
        )  # fmt: skip


def _math_metrics(props: Mapping[str, Any]) -> int:
    return sum(1 for metric in props.get("Metrics", []) if "MetricStat" in metric) or 1


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_MINUTES: Final = {"minute": 1, "hour": 60, "day": 1440}


def _invocations_per_month(expression: str) -> float:
    match = _RATE.match(expression)
    if match is None:
        raise ValueError(f"schedule {expression!r} is not a rate(); price it here first")
    every = int(match.group(1)) * _UNIT_MINUTES[match.group(2).rstrip("s")]
    return MINUTES_PER_MONTH / every


def _scheduled_functions(stack: _Stack) -> dict[str, tuple[Mapping[str, Any], float]]:
    """Logical id of each Lambda a schedule invokes → (its properties, invocations/month)."""
    found: dict[str, tuple[Mapping[str, Any], float]] = {}
    for _, rule in stack.typed("AWS::Events::Rule"):
        expression = rule.get("ScheduleExpression")
        if expression is None or rule.get("State", "ENABLED") != "ENABLED":
            continue
        for target in rule.get("Targets", []):
            arn = target.get("Arn", {})
            function_id = arn.get("Fn::GetAtt", [None])[0] if isinstance(arn, dict) else None
            function = stack.resources.get(function_id or "")
            if function is None or function["Type"] != "AWS::Lambda::Function":
                continue
            count = _invocations_per_month(expression)
            previous = found.get(function_id or "", ({}, 0.0))[1]
            found[function_id or ""] = (function.get("Properties", {}), previous + count)
    return found


def _schedules(
    stack: _Stack,
    scheduled: Mapping[str, tuple[Mapping[str, Any], float]],
    prices: PriceTable,
    assumptions: IdleAssumptions,
) -> None:
    for function_id, (props, count) in scheduled.items():
        memory_gb = int(props.get("MemorySize", 128)) / 1024
        arch = (props.get("Architectures") or ["x86_64"])[0]
        gb_seconds = count * memory_gb * assumptions.invocation_s
        usd = count * prices["lambda_request"] + gb_seconds * prices[f"lambda_gb_second_{arch}"]
        stack.items.append(
            CostItem(stack.name, function_id, "scheduled Lambda invocations", usd,
                     f"{count:,.0f} invocations × ({memory_gb * 1024:.0f} MB × "
                     f"{assumptions.invocation_s} s, {arch}) + requests")
        )  # fmt: skip


def _log_groups(
    stack: _Stack,
    scheduled: Mapping[str, tuple[Mapping[str, Any], float]],
    prices: PriceTable,
    assumptions: IdleAssumptions,
) -> None:
    """A log group costs at idle only if a schedule writes to it: ingestion, plus storage of
    what its retention keeps (daily bytes × retention days, in steady state)."""
    writers: dict[str, float] = {}
    for props, count in scheduled.values():
        group = props.get("LoggingConfig", {}).get("LogGroup", {})
        if isinstance(group, dict) and "Ref" in group:
            writers[group["Ref"]] = writers.get(group["Ref"], 0.0) + count
    for logical_id, props in stack.typed("AWS::Logs::LogGroup"):
        count = writers.get(logical_id, 0.0)
        monthly_gb = count * assumptions.log_bytes_per_invocation / GB
        retention_days = int(props.get("RetentionInDays", 3653))
        stored_gb = monthly_gb / DAYS_PER_MONTH * retention_days
        usd = monthly_gb * prices["logs_ingest_gb"] + stored_gb * prices["logs_store_gb_month"]
        basis = (
            f"{monthly_gb * 1000:.1f} MB/month ingested, {stored_gb * 1000:.1f} MB kept "
            f"({retention_days} days)"
            if count
            else "nothing writes to it while idle"
        )
        stack.items.append(CostItem(stack.name, logical_id, "CloudWatch log group", usd, basis))


def _tables(
    stack: _Stack, invocations: float, prices: PriceTable, assumptions: IdleAssumptions
) -> None:
    for logical_id, props in stack.typed("AWS::DynamoDB::Table"):
        if props.get("BillingMode") != "PAY_PER_REQUEST":
            raise ValueError(f"{logical_id}: only on-demand tables are priced here")
        reads = invocations * assumptions.read_units_per_invocation
        pitr = props.get("PointInTimeRecoverySpecification", {}).get(
            "PointInTimeRecoveryEnabled", False
        )
        storage = assumptions.table_gb * (
            prices["dynamodb_storage_gb_month"] + (prices["dynamodb_pitr_gb_month"] if pitr else 0)
        )
        stack.items.append(
            CostItem(stack.name, logical_id, "DynamoDB table (on demand)",
                     reads * prices["dynamodb_read_request_unit"] + storage,
                     f"{reads:,.0f} read units from the schedule + {assumptions.table_gb} GB"
                     + (" with point-in-time recovery" if pitr else ""))
        )  # fmt: skip


def _key_value_stores(
    stack: _Stack, invocations: float, prices: PriceTable, assumptions: IdleAssumptions
) -> None:
    for logical_id, _ in stack.typed("AWS::CloudFront::KeyValueStore"):
        calls = invocations * assumptions.kvs_calls_per_invocation
        stack.items.append(
            CostItem(stack.name, logical_id, "CloudFront KeyValueStore",
                     calls * prices["kvs_api_call"],
                     f"{calls:,.0f} API calls from the schedule; no function reads while idle")
        )  # fmt: skip


def _buckets(stack: _Stack, prices: PriceTable, assumptions: IdleAssumptions) -> None:
    for logical_id, _ in stack.typed("AWS::S3::Bucket"):
        stack.items.append(
            CostItem(stack.name, logical_id, "S3 bucket",
                     assumptions.bucket_gb * prices["s3_standard_gb_month"],
                     f"{assumptions.bucket_gb} GB stored")
        )  # fmt: skip


def _addresses_and_keys(stack: _Stack, prices: PriceTable) -> None:
    for logical_id, _ in stack.typed("AWS::EC2::EIP"):
        stack.items.append(
            CostItem(stack.name, logical_id, "Elastic IP (public IPv4)",
                     HOURS_PER_MONTH * prices["public_ipv4_hour"], "730 h, attached or not")
        )  # fmt: skip
    for logical_id, _ in stack.typed("AWS::KMS::Key"):
        stack.items.append(
            CostItem(stack.name, logical_id, "KMS key", prices["kms_key_month"], "1 key-month")
        )


def _warm_pools(stack: _Stack, prices: PriceTable) -> float:
    """Each stopped host of the pool keeps its EBS volumes. At idle the desired capacity is 0,
    so the pool holds max(MinSize, MaxGroupPreparedCapacity), or the group's MaxSize when
    MaxGroupPreparedCapacity is unset (PutWarmPool API reference). Returns one host's price."""
    per_host = 0.0
    for logical_id, props in stack.typed("AWS::AutoScaling::WarmPool"):
        group = stack.resources[_ref(props["AutoScalingGroupName"])]["Properties"]
        prepared = props.get("MaxGroupPreparedCapacity")
        hosts = max(
            int(props.get("MinSize", 0)),
            int(prepared) if prepared is not None else int(group["MaxSize"]),
        )
        volumes = _launch_template_volumes(stack, group)
        per_host = sum(usd for usd, _ in (_volume_price(v, prices) for v in volumes))
        described = ", ".join(text for _, text in (_volume_price(v, prices) for v in volumes))
        stack.items.append(
            CostItem(stack.name, logical_id, "warm pool: stopped hosts' volumes",
                     hosts * per_host, f"{hosts} host(s) × ({described})")
        )  # fmt: skip
    return per_host


def _launch_template_volumes(stack: _Stack, group: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    policy = group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {})
    spec = policy.get("LaunchTemplateSpecification") or group.get("LaunchTemplate", {})
    template = stack.resources[_ref(spec["LaunchTemplateId"])]["Properties"]
    mappings = template["LaunchTemplateData"].get("BlockDeviceMappings", [])
    return [mapping["Ebs"] for mapping in mappings if "Ebs" in mapping]


def _volume_price(ebs: Mapping[str, Any], prices: PriceTable) -> tuple[float, str]:
    kind = ebs.get("VolumeType", "gp2")
    if kind != "gp3":
        raise ValueError(f"only gp3 volumes are priced here, got {kind}")
    size = int(ebs["VolumeSize"])
    iops = max(0, int(ebs.get("Iops", 3000)) - 3000)
    mbps = max(0, int(ebs.get("Throughput", 125)) - 125)
    usd = (
        size * prices["gp3_gb_month"]
        + iops * prices["gp3_iops_month"]
        + mbps * prices["gp3_mbps_month"]
    )
    return usd, f"{size} GiB gp3" + (f" +{iops} IOPS" if iops else "") + (
        f" +{mbps} MB/s" if mbps else ""
    )


def _ref(value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    raise ValueError(f"expected a Ref to a resource of the same template, got {value!r}")


# --- the command ----------------------------------------------------------------------


def render(cost: IdleCost, prices: PriceTable) -> str:
    """The breakdown as an operator reads it: one line per item, the total, the budget."""
    lines = [f"Idle cost per month at {prices.region} list prices (table of {prices.checked}):"]
    for item in sorted(cost.items, key=lambda i: (-i.usd, i.stack, i.resource)):
        lines.append(f"  ${item.usd:7.3f}  {item.what:<36} {item.stack}/{item.resource}")
        lines.append(f"             {item.basis}")
    lines.append(f"  ${cost.total_usd:7.3f}  total (budget ${IDLE_BUDGET_USD:.2f})")
    lines.append(f"  each further warm host: ${cost.per_warm_host_usd:.2f}/month")
    unconfirmed = [name for name, price in prices.prices.items() if price.confirm]
    if unconfirmed:
        lines.append(f"  prices to confirm on their pages: {', '.join(unconfirmed)}")
    for stack, logical_id, kind in cost.unpriced:
        lines.append(f"  UNPRICED {kind} {stack}/{logical_id}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.costs", description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=REPO_ROOT / "cdk.out")
    args = parser.parse_args(argv)
    prices = load_prices()
    try:
        cost = idle_cost(load_templates(args.cdk_out), prices)
    except FileNotFoundError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    sys.stdout.write(render(cost, prices) + "\n")
    return 0 if cost.total_usd <= IDLE_BUDGET_USD and not cost.unpriced else 1


if __name__ == "__main__":
    sys.exit(main())
