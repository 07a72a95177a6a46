"""The control stack: table, two Lambdas, HTTP API routes with a JWT authorizer, triggers,
alarms, least-privilege IAM over the fleet's group and the routes' KeyValueStore."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from gpu_host.bootstrap.parameters import env_parameter_name
from infra.config import FLEET_TAG_KEY
from infra.constructs.reconcile_triggers import LAUNCH_UNSUCCESSFUL
from infra.stacks.control_stack import (
    CONTROL_HANDLER,
    HOST_CONTROL_SETTINGS,
    RECONCILE_HANDLER,
)
from lambdas.domain.host_record import HOST_PREFIX
from tests.infra.cdk.cdk_synth_support import Synthesized


def _statements(s: Synthesized, role_fragment: str) -> list[dict[str, Any]]:
    policies = s.control.find_resources("AWS::IAM::Policy")
    found: list[dict[str, Any]] = []
    for policy in policies.values():
        roles = str(policy["Properties"].get("Roles", []))
        if role_fragment in roles:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _function_logical_id(s: Synthesized, handler: str) -> str:
    (logical_id,) = s.control.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": handler}}
    )
    return logical_id


def test_table_is_keyed_by_pk_on_demand_with_point_in_time_recovery(
    synthesized: Synthesized,
) -> None:
    synthesized.control.resource_count_is("AWS::DynamoDB::Table", 1)
    synthesized.control.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )


@pytest.mark.parametrize("handler", [CONTROL_HANDLER, RECONCILE_HANDLER])
def test_lambdas_run_python_3_12_with_the_contract_settings(
    synthesized: Synthesized, handler: str
) -> None:
    synthesized.control.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": handler,
            "Runtime": "python3.12",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "SPINUP_AUTH_MODE": "apigw",
                        "SPINUP_GROUP_NAME": synthesized.config.group_name,
                        "SPINUP_INSTANCE_TYPES": ",".join(synthesized.config.instance_types),
                        "SPINUP_TABLE_NAME": Match.any_value(),
                        "SPINUP_KVS_ARN": Match.any_value(),
                        "SPINUP_WS_BASE_URL": Match.any_value(),
                        "SPINUP_IDLE_AFTER_DISCONNECT_S": "300",
                        "SPINUP_IDLE_WHILE_CONNECTED_S": "900",
                        "SPINUP_BOOT_GRACE_S": "1200",
                        "SPINUP_RELEASE_GRACE_S": "60",
                        "SPINUP_MAX_RUN_S": "28800",
                        "SPINUP_DAILY_GPU_HOURS": "12.0",
                        "SPINUP_MAX_SESSIONS_PER_USER": "2",
                        "SPINUP_SESSIONS_PER_HOST": "8",
                        "SPINUP_MAX_REPLACEMENTS": "2",
                    }
                )
            },
        },
    )


def test_exactly_two_functions_of_ours(synthesized: Synthesized) -> None:
    handlers = sorted(
        fn["Properties"]["Handler"]
        for fn in synthesized.control.find_resources("AWS::Lambda::Function").values()
    )
    assert handlers == sorted([CONTROL_HANDLER, RECONCILE_HANDLER])


def _environment(s: Synthesized, handler: str) -> dict[str, Any]:
    fns = s.control.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    (fn,) = fns.values()
    variables: dict[str, Any] = fn["Properties"]["Environment"]["Variables"]
    return variables


@pytest.mark.parametrize("handler", [CONTROL_HANDLER, RECONCILE_HANDLER])
def test_ws_base_url_is_the_distributions_socket_prefix(
    synthesized: Synthesized, handler: str
) -> None:
    """`wss://<distribution>/ws`: a session on host H connects to `<it>/H/inference`."""
    base = _environment(synthesized, handler)["SPINUP_WS_BASE_URL"]
    (prefix, domain, suffix) = base["Fn::Join"][1]
    assert (prefix, suffix) == ("wss://", "/ws")
    assert "DomainName" in json.dumps(domain)


@pytest.mark.parametrize("handler", [CONTROL_HANDLER, RECONCILE_HANDLER])
def test_no_instance_is_wired_into_the_lambdas(synthesized: Synthesized, handler: str) -> None:
    variables = _environment(synthesized, handler)
    for gone in ("SPINUP_INSTANCE_ID", "SPINUP_HOST_ID", "SPINUP_WS_URL"):
        assert gone not in variables


def test_the_lambdas_write_routes_into_the_edges_key_value_store(
    synthesized: Synthesized,
) -> None:
    kvs_arn = _environment(synthesized, CONTROL_HANDLER)["SPINUP_KVS_ARN"]
    assert "HostRoutesStore" in json.dumps(kvs_arn)
    assert _environment(synthesized, RECONCILE_HANDLER)["SPINUP_KVS_ARN"] == kvs_arn


def test_api_route_is_a_proxy_under_api_behind_a_cognito_jwt_authorizer(
    synthesized: Synthesized,
) -> None:
    # The authorizer lives beside the API (hosting); the route (control) names it.
    synthesized.hosting.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "AuthorizerType": "JWT",
            "IdentitySource": ["$request.header.Authorization"],
            "JwtConfiguration": {
                "Issuer": Match.any_value(),
                "Audience": Match.any_value(),
            },
        },
    )
    synthesized.control.has_resource_properties(
        "AWS::ApiGatewayV2::Route",
        {"RouteKey": "ANY /api/{proxy+}", "AuthorizationType": "JWT"},
    )
    synthesized.control.resource_count_is("AWS::ApiGatewayV2::Route", 1)


def test_schedule_runs_reconcile_every_minute(synthesized: Synthesized) -> None:
    reconcile = _function_logical_id(synthesized, RECONCILE_HANDLER)
    synthesized.control.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [reconcile, "Arn"]}})],
        },
    )


@pytest.mark.parametrize(
    "pattern",
    [
        # every instance: the events carry no tags, and no instance id is wired in
        {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
        # every other event of the group, and its failed launches under a rule of their own
        {
            "source": ["aws.autoscaling"],
            "detail-type": [{"anything-but": [LAUNCH_UNSUCCESSFUL]}],
            "detail": {"AutoScalingGroupName": ["spinup-gpu-fleet"]},
        },
        {
            "source": ["aws.autoscaling"],
            "detail-type": [LAUNCH_UNSUCCESSFUL],
            "detail": {"AutoScalingGroupName": ["spinup-gpu-fleet"]},
        },
    ],
    ids=["ec2-state-change", "group-events", "group-launch-failures"],
)
def test_events_run_reconcile(synthesized: Synthesized, pattern: dict[str, Any]) -> None:
    assert synthesized.config.group_name == "spinup-gpu-fleet"
    reconcile = _function_logical_id(synthesized, RECONCILE_HANDLER)
    synthesized.control.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": pattern,
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [reconcile, "Arn"]}})],
        },
    )


def test_alarms_on_reconcile_errors_and_silence(synthesized: Synthesized) -> None:
    synthesized.control.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
        },
    )
    synthesized.control.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "Invocations",
            "Namespace": "AWS/Lambda",
            "ComparisonOperator": "LessThanThreshold",
            "Threshold": 1,
            "TreatMissingData": "breaching",
            "Period": synthesized.config.reconcile_silence_alarm_minutes * 60,
        },
    )


def test_a_replace_loop_alarms_on_the_groups_failed_launches(synthesized: Synthesized) -> None:
    """Given the rule of the group's unsuccessful launches, then one alarm counts its matches
    (`TriggeredRules` of that rule) and fires above the configured count per period; no data
    (no failure) is not an alarm."""
    config = synthesized.config
    (rule,) = synthesized.control.find_resources(
        "AWS::Events::Rule",
        {"Properties": {"EventPattern": {"detail-type": [LAUNCH_UNSUCCESSFUL]}}},
    )
    alarms = synthesized.control.find_resources(
        "AWS::CloudWatch::Alarm",
        {"Properties": {"Namespace": "AWS/Events", "MetricName": "TriggeredRules"}},
    )
    (alarm,) = (a["Properties"] for a in alarms.values())
    assert alarm["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule}}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Period"] == config.replace_loop_alarm_hours * 3600
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == config.replace_loop_alarm_launches
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_watchdog_knows_the_control_planes_timeouts(synthesized: Synthesized) -> None:
    """Every control-plane setting published for the hosts has the value the Lambdas run
    with (one source: `DeployConfig.control_values`)."""
    # The timeouts whose longest the watchdog waits past (gpu_host/bootstrap/watchdog.py).
    assert {"idle_after_disconnect_s", "idle_while_connected_s", "boot_grace_s"} <= set(
        HOST_CONTROL_SETTINGS
    )
    lambda_env = _environment(synthesized, RECONCILE_HANDLER)
    prefix = synthesized.config.ssm_prefix
    for setting in HOST_CONTROL_SETTINGS:
        variable = f"SPINUP_{setting.upper()}"
        value = str(synthesized.config.control_values()[setting])
        assert lambda_env[variable] == value
        synthesized.control.has_resource_properties(
            "AWS::SSM::Parameter", {"Name": env_parameter_name(prefix, variable), "Value": value}
        )


def _with_action(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [st for st in statements if any(a.startswith(prefix) for a in _list(st["Action"]))]


@pytest.mark.parametrize("role", ["ControlRole", "ReconcileRole"])
def test_fleet_rights_are_scoped_to_the_group_and_its_tag(
    synthesized: Synthesized, role: str
) -> None:
    """Given a control-plane role, then every Auto Scaling action that changes the fleet names
    the group and requires its tag; only the read-only Describe calls use '*'."""
    config = synthesized.config
    statements = _with_action(_statements(synthesized, role), "autoscaling:")
    mutating = {
        "autoscaling:SetDesiredCapacity",
        "autoscaling:SetInstanceProtection",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    }
    (changes,) = [st for st in statements if set(_list(st["Action"])) & mutating]
    assert set(_list(changes["Action"])) == mutating
    assert changes["Condition"] == {
        "StringEquals": {f"autoscaling:ResourceTag/{FLEET_TAG_KEY}": config.app_name}
    }
    resource = json.dumps(changes["Resource"])
    assert f":autoScalingGroup:*:autoScalingGroupName/{config.group_name}" in resource
    (reads,) = [st for st in statements if st is not changes]
    assert set(_list(reads["Action"])) == {"autoscaling:Describe*", "ec2:DescribeInstances"}
    assert reads["Resource"] == "*"


@pytest.mark.parametrize("role", ["ControlRole", "ReconcileRole"])
def test_ec2_rights_are_read_only(synthesized: Synthesized, role: str) -> None:
    """No EC2 action changes an instance: hosts start and stop through the group."""
    statements = _with_action(_statements(synthesized, role), "ec2:")
    actions = {a for st in statements for a in _list(st["Action"]) if a.startswith("ec2:")}
    assert actions == {"ec2:DescribeInstances"}


@pytest.mark.parametrize("role", ["ControlRole", "ReconcileRole"])
def test_route_rights_are_the_key_value_stores_data_plane_on_that_store(
    synthesized: Synthesized, role: str
) -> None:
    (statement,) = _with_action(_statements(synthesized, role), "cloudfront-keyvaluestore:")
    assert set(_list(statement["Action"])) == {
        "cloudfront-keyvaluestore:DescribeKeyValueStore",
        "cloudfront-keyvaluestore:ListKeys",
        "cloudfront-keyvaluestore:PutKey",
        "cloudfront-keyvaluestore:DeleteKey",
    }
    assert "HostRoutesStore" in json.dumps(statement["Resource"])
    assert "*" not in json.dumps(statement["Resource"])


@pytest.mark.parametrize("role", ["ControlRole", "ReconcileRole"])
def test_lambda_roles_carry_no_managed_policies(synthesized: Synthesized, role: str) -> None:
    roles = synthesized.control.find_resources("AWS::IAM::Role")
    (props,) = [r["Properties"] for lid, r in roles.items() if lid.startswith(role)]
    assert "ManagedPolicyArns" not in props


def test_gpu_hosts_may_only_touch_host_records(synthesized: Synthesized) -> None:
    """The hosts share a role and learn their ids (instance ids) only when they run: IAM admits
    the host records' key prefix, nothing else of the table."""
    synthesized.control.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": [
                    {
                        "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                        "Effect": "Allow",
                        "Resource": Match.any_value(),
                        "Condition": {
                            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{HOST_PREFIX}*"]}
                        },
                    }
                ]
            },
            "Roles": [Match.any_value()],
        },
    )


def _list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _ticket_secret_id(s: Synthesized) -> str:
    (logical_id,) = s.control.find_resources("AWS::SecretsManager::Secret")
    return logical_id


def test_the_ticket_secret_is_generated_at_deploy_time(synthesized: Synthesized) -> None:
    synthesized.control.resource_count_is("AWS::SecretsManager::Secret", 1)
    synthesized.control.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "GenerateSecretString": Match.object_like(
                {"PasswordLength": 64, "ExcludePunctuation": True, "IncludeSpace": False}
            ),
            "SecretString": Match.absent(),
        },
    )


def test_only_the_control_api_knows_the_ticket_secret_and_only_by_arn(
    synthesized: Synthesized,
) -> None:
    secret = {"Ref": _ticket_secret_id(synthesized)}
    functions = synthesized.control.find_resources("AWS::Lambda::Function")
    env = {
        f["Properties"]["Handler"]: f["Properties"]["Environment"]["Variables"]
        for f in functions.values()
    }
    assert env[CONTROL_HANDLER]["SPINUP_TICKET_SECRET_ARN"] == secret
    assert "SPINUP_TICKET_SECRET_ARN" not in env[RECONCILE_HANDLER]
    assert all("SPINUP_TICKET_SECRET" not in variables for variables in env.values())


def _secret_readers(s: Synthesized) -> list[dict[str, Any]]:
    """(policy properties) of every policy that reads the ticket secret."""
    secret = {"Ref": _ticket_secret_id(s)}
    return [
        policy["Properties"]
        for policy in s.control.find_resources("AWS::IAM::Policy").values()
        if any(
            "secretsmanager:GetSecretValue" in _list(st["Action"]) and st["Resource"] == secret
            for st in policy["Properties"]["PolicyDocument"]["Statement"]
        )
    ]


def test_the_control_api_and_the_gpu_host_may_read_the_ticket_secret(
    synthesized: Synthesized,
) -> None:
    readers = _secret_readers(synthesized)
    roles = [str(policy["Roles"]) for policy in readers]
    assert len(readers) == 2, roles
    assert sum("ControlRole" in r for r in roles) == 1
    assert not any("ReconcileRole" in r for r in roles)
    host = [r for r in roles if "ControlRole" not in r]
    assert len(host) == 1
    assert "Fn::GetStackOutput" in host[0] or "ImportValue" in host[0], "the GPU host's role"
    for policy in readers:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "secretsmanager:GetSecretValue" in _list(statement["Action"]):
                assert set(_list(statement["Action"])) <= {
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:DescribeSecret",
                }


def test_the_host_finds_the_ticket_secret_under_its_prefix(synthesized: Synthesized) -> None:
    synthesized.control.has_resource_properties(
        "AWS::SSM::Parameter",
        {
            "Name": f"{synthesized.config.ssm_prefix}/ticket-secret-arn",
            "Value": {"Ref": _ticket_secret_id(synthesized)},
        },
    )


def test_the_host_enforces_the_control_planes_per_user_limit(synthesized: Synthesized) -> None:
    """One socket per API session: the backend gets the same per-user limit as the Lambdas."""
    name = env_parameter_name(synthesized.config.ssm_prefix, "SPINUP_MAX_SESSIONS_PER_USER")
    limit = synthesized.config.control_values()["max_sessions_per_user"]
    synthesized.control.has_resource_properties(
        "AWS::SSM::Parameter", {"Name": name, "Value": str(limit)}
    )
