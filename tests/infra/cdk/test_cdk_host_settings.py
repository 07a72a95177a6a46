"""What the GPU hosts read from SSM, across the three stacks: every setting the config
renderer requires is published by some stack (the list is `gpu_host.bootstrap.parameters`'),
and the allowed browser origin is the distribution's."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_host.bootstrap import parameters
from tests.infra.cdk.cdk_synth_support import Synthesized


def _published(s: Synthesized) -> dict[str, Any]:
    """SSM parameter name → its value, over every stack."""
    found: dict[str, Any] = {}
    for template in (s.gpu, s.hosting, s.control):
        for resource in template.find_resources("AWS::SSM::Parameter").values():
            props = resource["Properties"]
            assert props["Name"] not in found, f"{props['Name']} published twice"
            found[props["Name"]] = props["Value"]
    return found


REQUIRED_NAMES = [
    *((name, parameters.parameter_name) for name in parameters.REQUIRED),
    *((name, parameters.env_parameter_name) for name in parameters.REQUIRED_ENV),
]


@pytest.mark.parametrize(
    ("name", "full_name"), REQUIRED_NAMES, ids=[name for name, _ in REQUIRED_NAMES]
)
def test_every_setting_the_host_requires_is_published(
    synthesized: Synthesized, name: str, full_name: Any
) -> None:
    """Given the renderer's required settings, then some stack publishes each under the hosts'
    prefix: a host would otherwise wait for it at every start, then fail."""
    assert full_name(synthesized.config.ssm_prefix, name) in _published(synthesized)


def test_the_allowed_origin_is_the_distributions_https_origin(synthesized: Synthesized) -> None:
    name = parameters.env_parameter_name(synthesized.config.ssm_prefix, "SPINUP_ALLOWED_ORIGINS")
    (distribution,) = synthesized.hosting.find_resources("AWS::CloudFront::Distribution")
    assert _published(synthesized)[name] == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]
    }


def test_every_host_setting_is_under_the_hosts_prefix(synthesized: Synthesized) -> None:
    """The hosts read `<prefix>/…` recursively and the role may read nothing else."""
    prefix = synthesized.config.ssm_prefix
    outside = [n for n in _published(synthesized) if not n.startswith(f"{prefix}/")]
    assert outside == []
