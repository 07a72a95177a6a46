"""The local mode's settings: ports, served models, read from `SPINUP_LOCAL_*`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gpu_host.models.spec import SPECS
from infra.local.settings import LocalSettings


def test_defaults_serve_every_model_on_the_documented_ports() -> None:
    settings = LocalSettings()
    assert settings.served_models == tuple(SPECS)
    assert (settings.ui_port, settings.backend_port, settings.moto_port) == (8000, 8080, 5000)
    assert settings.ws_url == "ws://127.0.0.1:8080/ws/inference"
    assert settings.ui_origin == "http://127.0.0.1:8000"
    assert settings.require_tickets is False, "local mode also takes token hellos"


def test_served_models_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINUP_LOCAL_SERVED_MODELS", "text, ocr")
    assert LocalSettings().served_models == ("text", "ocr")


@pytest.mark.parametrize("value", ["", "yolo9000", "text,nope"])
def test_unknown_or_no_models_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SPINUP_LOCAL_SERVED_MODELS", value)
    with pytest.raises(ValidationError, match="serve at least one of"):
        LocalSettings()


@pytest.mark.parametrize(("name", "value"), [("UI_PORT", "0"), ("BACKEND_PORT", "70000")])
def test_bad_ports_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"SPINUP_LOCAL_{name}", value)
    with pytest.raises(ValidationError):
        LocalSettings()
