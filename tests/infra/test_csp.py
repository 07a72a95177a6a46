"""The pages' Content-Security-Policy (one definition for CloudFront and the local mode)."""

from __future__ import annotations

import pytest

from infra.csp import content_security_policy, origin_of


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def test_the_policy_is_strict() -> None:
    """No inline script or style, no eval, nothing from elsewhere; only this origin frames."""
    d = directives(content_security_policy())
    assert d["default-src"] == ["'self'"]
    assert d["script-src"] == ["'self'"]
    assert d["style-src"] == ["'self'"]
    assert d["object-src"] == ["'none'"]
    assert d["base-uri"] == ["'none'"]
    assert d["frame-ancestors"] == ["'self'"]
    assert d["frame-src"] == ["'self'"]
    assert not any("unsafe" in s for sources in d.values() for s in sources)


def test_connect_src_adds_the_given_origins_once() -> None:
    policy = content_security_policy(
        connect_to=["ws://127.0.0.1:8080", "https://auth.example", "ws://127.0.0.1:8080"]
    )
    assert directives(policy)["connect-src"] == [
        "'self'",
        "ws://127.0.0.1:8080",
        "https://auth.example",
    ]


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("ws://127.0.0.1:8080/ws/inference", "ws://127.0.0.1:8080"),
        (
            "https://x.auth.us-east-1.amazoncognito.com/oauth2/token",
            "https://x.auth.us-east-1.amazoncognito.com",
        ),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_origin_of_a_relative_url_is_an_error() -> None:
    with pytest.raises(ValueError, match="not an absolute URL"):
        origin_of("/ws/inference")
