"""Hermetic tests: no `SPINUP_*` variable of the shell that runs pytest reaches a test.

A test that needs a setting sets it itself (`monkeypatch.setenv`, or the settings object's
arguments); a process a test starts gets `tests.support.hermetic.clean_environ(...)`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.hermetic import settings_in


@pytest.fixture(scope="session", autouse=True)
def _no_user_settings_in_the_session() -> Iterator[None]:
    """Session fixtures (servers started once) see no user setting either: an autouse
    fixture runs before the other fixtures of its scope."""
    with pytest.MonkeyPatch.context() as patch:
        for name in settings_in(os.environ):
            patch.delenv(name)
        yield


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without any, whatever an earlier test left behind."""
    for name in settings_in(os.environ):
        monkeypatch.delenv(name)
