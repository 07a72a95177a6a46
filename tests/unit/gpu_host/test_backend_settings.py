"""Backend settings: `SPINUP_*` environment, read once, validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gpu_host.backend.settings import Settings

REQUIRED = {
    "SPINUP_JWKS_URL": "http://127.0.0.1:8000/.well-known/jwks.json",
    "SPINUP_JWT_ISSUER": "http://127.0.0.1:8000",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_defaults_match_the_architecture_page(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.triton_grpc_url == "127.0.0.1:8001"
    assert settings.jwt_audience == "spinup"
    assert settings.allowed_origins == ()
    assert settings.models == ("text",)
    assert settings.table_name == ""
    assert settings.host_id == "gpu-0"
    assert settings.max_sessions_per_user == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://a.example", ("https://a.example",)),
        ("https://a.example, https://b.example/", ("https://a.example", "https://b.example")),
        ("", ()),
        (" , ", ()),
    ],
)
def test_allowed_origins_are_comma_separated(
    env: pytest.MonkeyPatch, value: str, expected: tuple[str, ...]
) -> None:
    env.setenv("SPINUP_ALLOWED_ORIGINS", value)
    assert Settings().allowed_origins == expected


def test_models_are_comma_separated_and_deduplicated(env: pytest.MonkeyPatch) -> None:
    env.setenv("SPINUP_MODELS", "text, text")
    assert Settings().models == ("text",)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SPINUP_MODELS", "text,nope", "unknown models"),
        ("SPINUP_MODELS", "", "at least one model"),
        ("SPINUP_JWKS_URL", "file:///tmp/jwks.json", "http\\(s\\) URL"),
        ("SPINUP_JWKS_URL", "not a url", "http\\(s\\) URL"),
        ("SPINUP_MAX_FRAME_BYTES", "0", "greater than 16"),
        ("SPINUP_MAX_SESSIONS_PER_USER", "0", "greater than or equal to 1"),
        ("SPINUP_BREAKER_COOLDOWN_S", "-1", "greater than 0"),
    ],
)
def test_bad_values_fail_with_a_precise_error(
    env: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_token_settings_are_required(env: pytest.MonkeyPatch, missing: str) -> None:
    env.delenv(missing)
    with pytest.raises(ValidationError, match=missing.removeprefix("SPINUP_").lower()):
        Settings()


def test_settings_are_frozen(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.models = ("other",)  # type: ignore[misc]
