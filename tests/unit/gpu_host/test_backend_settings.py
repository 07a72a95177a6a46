"""Backend settings: `SPINUP_*` environment, read once, validated."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from gpu_host.backend.settings import Settings
from gpu_host.models.spec import BUILTIN_SPECS, USER_MODELS_FILE

REQUIRED = {
    "SPINUP_JWKS_URL": "http://127.0.0.1:8000/.well-known/jwks.json",
    "SPINUP_JWT_ISSUER": "http://127.0.0.1:8000",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """The required settings, and no user models: the catalog is the built-in one whatever
    the checkout's `gpu_host/models/user/` holds."""
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SPINUP_USER_MODELS", str(tmp_path / "no-user-models" / "user_models.json"))
    return monkeypatch


def test_defaults_match_the_architecture_page(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.triton_url == "http://127.0.0.1:8000"
    assert settings.jwt_audience == "spinup"
    assert settings.allowed_origins == ()
    assert settings.models == ("detect", "pose", "face", "text", "ocr", "segment")
    assert settings.default_models == ("detect", "pose")
    assert settings.frame_budget_ms == 500
    assert settings.table_name == ""
    assert settings.host_id == "gpu-0"
    assert settings.max_sessions_per_user == 2
    assert settings.workers == len(os.sched_getaffinity(0))
    assert settings.state_dir is None
    assert Settings.model_fields["user_models"].default == USER_MODELS_FILE
    assert settings.catalog() == BUILTIN_SPECS


@pytest.mark.parametrize(("value", "ok"), [("1", True), ("64", True), ("0", False), ("257", False)])
def test_workers_are_one_to_max_workers(env: pytest.MonkeyPatch, value: str, ok: bool) -> None:
    env.setenv("SPINUP_WORKERS", value)
    if ok:
        assert Settings().workers == int(value)
    else:
        with pytest.raises(ValidationError, match="workers"):
            Settings()


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
        ("SPINUP_MODELS", "text,nope", r"models: unknown models \['nope'\]"),
        ("SPINUP_MODELS", "", "at least one model"),
        ("SPINUP_MODELS", "detect,ocr", "'ocr' reads the regions of 'text'; serve it too"),
        ("SPINUP_DEFAULT_MODELS", "detect,nope", r"default_models: unknown models \['nope'\]"),
        ("SPINUP_FRAME_BUDGET_MS", "0", "greater than 0"),
        ("SPINUP_JWKS_URL", "file:///tmp/jwks.json", "http\\(s\\) URL"),
        ("SPINUP_JWKS_URL", "not a url", "http\\(s\\) URL"),
        ("SPINUP_MAX_FRAME_BYTES", "0", "greater than 16"),
        ("SPINUP_MAX_SESSIONS_PER_USER", "0", "greater than or equal to 1"),
        ("SPINUP_BREAKER_COOLDOWN_S", "-1", "greater than 0"),
        ("SPINUP_TRITON_URL", "https://127.0.0.1:8000", "must be http://host:port"),
        ("SPINUP_TRITON_URL", "http://127.0.0.1:8000/v2", "must be http://host:port"),
        ("SPINUP_TRITON_URL", "http://127.0.0.1:http", "must be http://host:port"),
        ("SPINUP_TRITON_URL", "http://127.0.0.1:99999", "must be http://host:port"),
        ("SPINUP_TRITON_URL", "http://:8000", "must be http://host:port"),
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


def test_a_default_model_need_not_be_served(env: pytest.MonkeyPatch) -> None:
    """The default is "those of them served": a host serving text only is still valid."""
    env.setenv("SPINUP_MODELS", "text")
    assert Settings().default_models == ("detect", "pose")


def test_user_models_join_the_catalog(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "mine.onnx").write_bytes(b"onnx")
    declared = {
        "models": [
            {"name": "mine", "file": "mine.onnx", "layout": "yolov8-detect", "input_size": 64}
        ]
    }
    (tmp_path / "user_models.json").write_text(json.dumps(declared))
    env.setenv("SPINUP_USER_MODELS", str(tmp_path / "user_models.json"))
    env.setenv("SPINUP_MODELS", "detect,mine")
    settings = Settings()
    assert settings.models == ("detect", "mine")
    assert settings.catalog()["mine"].processor_args["size"] == 64


def test_a_broken_user_models_file_is_a_settings_error(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "user_models.json").write_text("{not json")
    env.setenv("SPINUP_USER_MODELS", str(tmp_path / "user_models.json"))
    with pytest.raises(ValidationError, match=r"user_models\.json"):
        Settings()


def test_settings_are_frozen(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.models = ("other",)  # type: ignore[misc]


def test_tickets_are_optional_unless_required(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (settings.ticket_secret, settings.require_tickets) == (None, False)
    env.setenv("SPINUP_REQUIRE_TICKETS", "true")
    with pytest.raises(ValidationError, match="SPINUP_REQUIRE_TICKETS needs SPINUP_TICKET_SECRET"):
        Settings()
    env.setenv("SPINUP_TICKET_SECRET", "short")
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings()
    env.setenv("SPINUP_TICKET_SECRET", "k" * 40)
    assert Settings().require_tickets is True


def test_the_motion_gate_is_off_by_default(env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.motion_gate is False
    assert settings.motion_threshold == 2.0


@pytest.mark.parametrize(
    ("gate", "threshold", "expected"),
    [("true", "3.5", (True, 3.5)), ("1", "0", (True, 0.0)), ("false", "255", (False, 255.0))],
)
def test_the_motion_gate_is_set_from_the_environment(
    env: pytest.MonkeyPatch, gate: str, threshold: str, expected: tuple[bool, float]
) -> None:
    env.setenv("SPINUP_MOTION_GATE", gate)
    env.setenv("SPINUP_MOTION_THRESHOLD", threshold)
    settings = Settings()
    assert (settings.motion_gate, settings.motion_threshold) == expected


@pytest.mark.parametrize("threshold", ["-0.1", "255.5", "much"])
def test_a_motion_threshold_out_of_range_is_refused(
    env: pytest.MonkeyPatch, threshold: str
) -> None:
    env.setenv("SPINUP_MOTION_THRESHOLD", threshold)
    with pytest.raises(ValidationError, match="motion_threshold"):
        Settings()


@pytest.mark.parametrize(
    ("served", "defaults", "startup", "budget"),
    [
        # Every built-in model fits the default budget: one session may use them all.
        ("detect,pose,face,text,ocr", "detect,pose", ("detect", "pose"), 5),
        ("detect,face,text,ocr", "ocr,face", ("text", "ocr", "face"), 5),  # ocr reads text's
        ("face,text", "detect,pose", ("face", "text"), 4),  # no default served: every model
        ("detect,pose,face,text", "detect", ("detect",), 4),
    ],
)
def test_startup_models_are_what_a_default_session_runs(
    env: pytest.MonkeyPatch, served: str, defaults: str, startup: tuple[str, ...], budget: int
) -> None:
    env.setenv("SPINUP_MODELS", served)
    env.setenv("SPINUP_DEFAULT_MODELS", defaults)
    settings = Settings()
    assert settings.startup_models() == startup
    assert settings.model_budget() == budget


@pytest.mark.parametrize(("budget", "ok"), [("1", False), ("2", True), ("9", True), ("0", False)])
def test_the_model_budget_holds_the_startup_models(
    env: pytest.MonkeyPatch, budget: str, ok: bool
) -> None:
    env.setenv("SPINUP_MAX_LOADED_MODELS", budget)
    if ok:
        assert Settings().model_budget() == int(budget)
    else:
        with pytest.raises(ValidationError, match="max_loaded_models"):
            Settings()
