"""The user's own settings stay out of the tests: no `SPINUP_*` variable exported in the shell
that runs them may change an outcome (the root conftest.py removes them for every test)."""

from __future__ import annotations

import os
from collections.abc import Mapping

SETTINGS_PREFIX = "SPINUP_"
"""Every setting of this project (control plane, backend, local mode) starts with it."""


def settings_in(environ: Mapping[str, str]) -> list[str]:
    """The names of this project's settings in `environ`."""
    return sorted(name for name in environ if name.startswith(SETTINGS_PREFIX))


def clean_environ(**settings: str) -> dict[str, str]:
    """The environment for a process a test starts: this one's without any `SPINUP_*`
    variable, plus the test's own `settings` (a session fixture starts processes before, or
    outside, the per-test cleaning, so it says explicitly what the process gets)."""
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith(SETTINGS_PREFIX)
    }
    return {**inherited, **settings}
