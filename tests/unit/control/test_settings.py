"""The control plane's settings: names, defaults and parsing of the SPINUP_ environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lambdas.settings import Settings

REQUIRED = {"SPINUP_TABLE_NAME": "spinup", "SPINUP_GROUP_NAME": "spinup-gpu"}
JWKS = {
    "SPINUP_AUTH_MODE": "jwks",
    "SPINUP_JWKS_URL": "https://issuer.example/.well-known/jwks.json",
    "SPINUP_JWT_ISSUER": "https://issuer.example",
    "SPINUP_JWT_AUDIENCE": "spinup",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("AWS_REGION", "SPINUP_AWS_REGION", "SPINUP_INSTANCE_TYPES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**REQUIRED, **JWKS}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_the_documented_defaults(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.group_name == "spinup-gpu"
    assert settings.idle_after_disconnect_s == 300
    assert settings.idle_while_connected_s == 900
    assert settings.boot_grace_s == 1200
    assert settings.release_grace_s == 60
    assert settings.max_run_s == 28800
    assert settings.daily_gpu_hours == 12
    assert settings.max_sessions_per_user == 2
    assert settings.sessions_per_host == 8
    assert settings.max_replacements == 2
    assert (settings.ws_base_url, settings.kvs_arn) == ("", "")
    assert settings.instance_types == ("g4dn.xlarge", "g5.xlarge", "g6.xlarge")
    assert settings.default_instance_type == settings.instance_types[0]


@pytest.mark.parametrize("name", ["SPINUP_INSTANCE_ID", "SPINUP_HOST_ID", "SPINUP_WS_URL"])
def test_the_single_instance_settings_are_gone(name: str, env: pytest.MonkeyPatch) -> None:
    """Hosts are found through the group: an instance id set somewhere changes nothing."""
    env.setenv(name, "i-0123456789abcdef0")
    settings = Settings()
    assert name.removeprefix("SPINUP_").lower() not in Settings.model_fields
    assert name.removeprefix("SPINUP_").lower() not in settings.model_dump()


def test_the_group_name_is_required(env: pytest.MonkeyPatch) -> None:
    env.delenv("SPINUP_GROUP_NAME")
    with pytest.raises(ValidationError, match="group_name"):
        Settings()


@pytest.mark.parametrize(
    ("base", "host", "url"),
    [
        ("wss://d111.cloudfront.net/ws", "i-0abc", "wss://d111.cloudfront.net/ws/i-0abc/inference"),
        ("ws://127.0.0.1:8080/ws", "i-1", "ws://127.0.0.1:8080/ws/i-1/inference"),
        ("", "i-0abc", ""),
    ],
    ids=["cloudfront", "local_web_front", "no_sockets_here"],
)
def test_each_host_has_its_socket_url(
    base: str, host: str, url: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv("SPINUP_WS_BASE_URL", base)
    assert Settings().ws_url_for(host) == url


@pytest.mark.parametrize(
    "base",
    ["https://d111.cloudfront.net/ws", "wss://d111.cloudfront.net/ws/", "wss://x/ws?a=1", "ws"],
    ids=["not_a_socket", "trailing_slash", "query", "not_a_url"],
)
def test_a_bad_socket_base_is_refused(base: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("SPINUP_WS_BASE_URL", base)
    with pytest.raises(ValidationError, match="ws_base_url"):
        Settings()


def test_fleet_numbers_come_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("SPINUP_SESSIONS_PER_HOST", "1")
    env.setenv("SPINUP_MAX_REPLACEMENTS", "0")
    env.setenv("SPINUP_KVS_ARN", "arn:aws:cloudfront::123456789012:key-value-store/abc")
    settings = Settings()
    assert (settings.sessions_per_host, settings.max_replacements) == (1, 0)
    assert settings.kvs_arn.endswith("key-value-store/abc")


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("g5.xlarge", ("g5.xlarge",)),
        ("g5.xlarge,g6.xlarge", ("g5.xlarge", "g6.xlarge")),
        (" g5.2xlarge , g6.xlarge ,g4dn.xlarge,", ("g5.2xlarge", "g6.xlarge", "g4dn.xlarge")),
    ],
)
def test_instance_types_are_a_comma_separated_list(
    raw: str, parsed: tuple[str, ...], env: pytest.MonkeyPatch
) -> None:
    env.setenv("SPINUP_INSTANCE_TYPES", raw)
    settings = Settings()
    assert settings.instance_types == parsed
    assert settings.default_instance_type == parsed[0]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("", "at least one instance type"),
        (" , ", "at least one instance type"),
        ("g5.xlarge,G6 XL", "not an EC2 instance type: G6 XL"),
        ("g5.xlarge,g5.xlarge", "listed twice"),
    ],
)
def test_bad_instance_types_are_named(raw: str, words: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("SPINUP_INSTANCE_TYPES", raw)
    with pytest.raises(ValidationError, match=words):
        Settings()


def test_numbers_come_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("SPINUP_IDLE_AFTER_DISCONNECT_S", "120")
    env.setenv("SPINUP_DAILY_GPU_HOURS", "1.5")
    settings = Settings()
    assert settings.idle_after_disconnect_s == 120
    assert settings.daily_budget_s == 5400


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPINUP_IDLE_AFTER_DISCONNECT_S", "0"),
        ("SPINUP_MAX_SESSIONS_PER_USER", "-1"),
        ("SPINUP_DAILY_GPU_HOURS", "25"),
        ("SPINUP_SESSIONS_PER_HOST", "0"),
        ("SPINUP_MAX_REPLACEMENTS", "11"),
        ("SPINUP_GROUP_NAME", ""),
        ("SPINUP_AUTH_MODE", "none"),
    ],
)
def test_bad_values_are_refused(name: str, value: str, env: pytest.MonkeyPatch) -> None:
    env.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_jwks_mode_names_what_is_missing(env: pytest.MonkeyPatch) -> None:
    env.delenv("SPINUP_JWKS_URL")
    env.delenv("SPINUP_JWT_AUDIENCE")
    with pytest.raises(ValidationError, match="SPINUP_JWKS_URL, SPINUP_JWT_AUDIENCE"):
        Settings()


def test_api_gateway_mode_needs_no_jwks(env: pytest.MonkeyPatch) -> None:
    for name in JWKS:
        env.delenv(name)
    env.setenv("SPINUP_AUTH_MODE", "apigw")
    assert Settings().auth_mode == "apigw"


def test_the_region_lambda_sets_is_used(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_REGION", "eu-west-1")
    assert Settings().aws_region == "eu-west-1"
    env.setenv("SPINUP_AWS_REGION", "eu-central-1")
    assert Settings().aws_region == "eu-central-1"


def test_settings_are_read_once_and_frozen(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.idle_after_disconnect_s = 1  # type: ignore[misc]


def test_tickets_live_30_s_by_default_and_at_most_a_minute(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (settings.ticket_secret, settings.ticket_secret_arn) == (None, "")
    assert settings.ticket_ttl_s == 30
    env.setenv("SPINUP_TICKET_TTL_S", "61")
    with pytest.raises(ValidationError, match="ticket_ttl_s"):
        Settings()


def test_a_short_ticket_secret_is_refused_and_a_good_one_kept_secret(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("SPINUP_TICKET_SECRET", "short")
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings()
    env.setenv("SPINUP_TICKET_SECRET", "k" * 40)
    settings = Settings()
    assert settings.ticket_secret is not None
    assert settings.ticket_secret.get_secret_value() == "k" * 40
    assert "k" * 40 not in repr(settings)
