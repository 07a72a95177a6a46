"""The local mode's settings: ports, served models, read from `SPINUP_LOCAL_*`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from gpu_host.models.spec import BUILTIN_SPECS, USER_MODELS_FILE
from infra.local.ports import HostPorts
from infra.local.settings import LocalSettings


@pytest.fixture
def no_user_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A user-model file that does not exist: the catalog is the built-in one, whatever the
    checkout's `gpu_host/models/user/` holds."""
    path = tmp_path / "no-user-models" / "user_models.json"
    monkeypatch.setenv("SPINUP_LOCAL_USER_MODELS", str(path))
    return path


@pytest.mark.usefixtures("no_user_models")
def test_defaults_serve_every_model_on_the_documented_ports() -> None:
    settings = LocalSettings()
    assert settings.served_models == tuple(BUILTIN_SPECS)
    assert LocalSettings.model_fields["user_models"].default == USER_MODELS_FILE
    assert (settings.ui_port, settings.backend_port, settings.moto_port) == (8000, 8080, 5000)
    assert settings.ws_base_url == "ws://127.0.0.1:8000/ws", "sockets go through the web front"
    assert settings.first_host_ports == HostPorts(8080, 8100, 8101, 8102)
    assert (settings.max_hosts, settings.warm_hosts) == (1, 1)
    assert settings.ui_origin == "http://127.0.0.1:8000"
    assert settings.require_tickets is False, "local mode also takes token hellos"
    assert settings.backend_workers == 1, "one backend worker locally, whatever the cores"


def test_declared_user_models_are_served_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "mine.onnx").write_bytes(b"onnx")
    mine = {"name": "mine", "file": "mine.onnx", "layout": "yolov8-detect", "input_size": 64}
    (tmp_path / "user_models.json").write_text(json.dumps({"models": [mine]}))
    monkeypatch.setenv("SPINUP_LOCAL_USER_MODELS", str(tmp_path / "user_models.json"))
    assert LocalSettings().served_models == (*BUILTIN_SPECS, "mine")
    monkeypatch.setenv("SPINUP_LOCAL_SERVED_MODELS", "text,mine")
    assert LocalSettings().served_models == ("text", "mine")


def test_a_broken_user_models_file_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "user_models.json").write_text("{not json")
    monkeypatch.setenv("SPINUP_LOCAL_USER_MODELS", str(tmp_path / "user_models.json"))
    with pytest.raises(ValidationError, match=r"user_models\.json"):
        LocalSettings()


@pytest.mark.usefixtures("no_user_models")
def test_served_models_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINUP_LOCAL_SERVED_MODELS", "text, ocr")
    assert LocalSettings().served_models == ("text", "ocr")


@pytest.mark.usefixtures("no_user_models")
@pytest.mark.parametrize("value", ["", "yolo9000", "text,nope"])
def test_unknown_or_no_models_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SPINUP_LOCAL_SERVED_MODELS", value)
    with pytest.raises(ValidationError, match="serve at least one of"):
        LocalSettings()


@pytest.mark.usefixtures("no_user_models")
@pytest.mark.parametrize(("name", "value"), [("UI_PORT", "0"), ("BACKEND_PORT", "70000")])
def test_bad_ports_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"SPINUP_LOCAL_{name}", value)
    with pytest.raises(ValidationError):
        LocalSettings()


@pytest.mark.usefixtures("no_user_models")
def test_the_fleet_size_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINUP_LOCAL_MAX_HOSTS", "2")
    monkeypatch.setenv("SPINUP_LOCAL_WARM_HOSTS", "0")
    assert (LocalSettings().max_hosts, LocalSettings().warm_hosts) == (2, 0)


@pytest.mark.usefixtures("no_user_models")
@pytest.mark.parametrize(("name", "value"), [("MAX_HOSTS", "0"), ("WARM_HOSTS", "-1")])
def test_a_fleet_without_hosts_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"SPINUP_LOCAL_{name}", value)
    with pytest.raises(ValidationError, match=name.lower()):
        LocalSettings()
