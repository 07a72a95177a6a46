"""cdk-nag on the whole app, and the one way this code base acknowledges a finding.

Every acknowledgment sits beside the construct that causes the finding and says why the
finding is acceptable there; IAM4/IAM5 findings are acknowledged one by one
(`AwsSolutions-IAM5[Resource::*]`), never as a whole rule.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from aws_cdk import custom_resources as cr
from cdk_nag import AwsSolutionsChecks
from constructs import Construct, IConstruct


def enable_nag(app: App) -> None:
    """Run the AWS Solutions rule pack at synth; an unacknowledged error fails the synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, finding: str, *, reason: str) -> None:
    """Acknowledge one finding on `scope` (and the resources below it)."""
    if not reason.strip():
        raise ValueError(f"acknowledging {finding} needs a reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def acknowledge_provider_logs(resource: cr.AwsCustomResource) -> None:
    """CDK's provider function of an `AwsCustomResource` logs with an AWS managed policy."""
    provider = resource.grant_principal
    assert isinstance(provider, Construct)
    assert provider.node.scope is not None
    acknowledge(
        provider.node.scope,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        reason="CDK's AwsCustomResource provider writes its own logs; the AWS managed "
        "policy grants exactly CloudWatch Logs writes.",
    )
