"""The root conftest.py keeps the user's `SPINUP_*` settings out of every test, and
`clean_environ` out of every process a test starts.

The first test proves something only when pytest runs with such a variable exported, which
`tests/integration/suite/test_hermetic_suite.py` does."""

from __future__ import annotations

import os

import pytest

from tests.support.hermetic import clean_environ, settings_in


def test_no_user_setting_reaches_a_test() -> None:
    assert settings_in(os.environ) == []


def test_started_processes_get_only_the_settings_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINUP_IDLE_AFTER_DISCONNECT_S", "30")
    monkeypatch.setenv("SPINUP_LOCAL_UI_PORT", "9000")
    monkeypatch.setenv("UNRELATED", "kept")
    env = clean_environ(SPINUP_MODELS="text")
    assert settings_in(env) == ["SPINUP_MODELS"]
    assert env["SPINUP_MODELS"] == "text"
    assert env["UNRELATED"] == "kept"
