"""The systemd units, checked offline: `systemd-analyze verify` (any output is a failure: it
only warns about unknown keys and bad values), restarts with start limits, the boot order.
(The serving processes run in containers, `docker run` without Compose; their flags are
checked in test_host_pins.py and test_host_boot_files.py.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.infra.host.host_boot_support import SYSTEMD_DIR

UNITS = sorted(p.name for p in SYSTEMD_DIR.iterdir())
SERVING = ("spinup-backend.service", "spinup-config.service", "spinup-triton.service")


def _analyze(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args, f"--root={root}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=root,
    )


def test_the_expected_units_exist() -> None:
    assert UNITS == [
        "spinup-backend.service",
        "spinup-config.service",
        "spinup-lifecycle.service",
        "spinup-triton.service",
        "spinup-watchdog.service",
        "spinup-watchdog.timer",
        "spinup.target",
    ]


def test_units_verify_cleanly(unit_root: Path) -> None:
    result = _analyze(
        unit_root, "verify", "--man=no", *(f"etc/systemd/system/{unit}" for unit in UNITS)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_verify_does_report_a_broken_unit(unit_root: Path) -> None:
    """Guard for the check above: a misspelt key does produce output."""
    broken = unit_root / "etc/systemd/system/spinup-broken.service"
    broken.write_text("[Service]\nExecStart=/usr/bin/docker\nRestart=sometimes\n", "utf-8")
    try:
        result = _analyze(
            unit_root, "verify", "--man=no", "etc/systemd/system/spinup-broken.service"
        )
    finally:
        broken.unlink()
    assert "restart specifier" in result.stderr


@pytest.mark.parametrize("unit", SERVING)
def test_serving_units_restart_on_failure_within_a_start_limit(unit: str) -> None:
    assert _lines(unit, "Restart") == "Restart=on-failure"
    assert re.fullmatch(r"RestartSec=\d+s", _lines(unit, "RestartSec"))
    assert re.fullmatch(r"StartLimitIntervalSec=\d+min", _lines(unit, "StartLimitIntervalSec"))
    burst = _lines(unit, "StartLimitBurst").removeprefix("StartLimitBurst=")
    assert 1 < int(burst) <= 10


def test_the_config_unit_outwaits_the_renderer() -> None:
    """render_config waits up to SPINUP_SETTINGS_WAIT_S (600 s) for missing settings."""
    from gpu_host.bootstrap.render_config import RenderSettings

    wait_s = RenderSettings.model_fields["settings_wait_s"].default
    timeout = _lines("spinup-config.service", "TimeoutStartSec").removeprefix("TimeoutStartSec=")
    assert timeout.endswith("min")
    assert int(timeout.removesuffix("min")) * 60 > wait_s


def _lines(unit: str, key: str) -> str:
    text = (SYSTEMD_DIR / unit).read_text(encoding="utf-8")
    return " ".join(line for line in text.splitlines() if line.startswith(f"{key}="))


def test_the_target_starts_every_serving_piece() -> None:
    wanted = _lines("spinup.target", "Wants")
    serving = {"spinup-lifecycle.service", "spinup-watchdog.service", "spinup.target"}
    for unit in {*UNITS, "nginx.service"} - serving:
        assert unit in wanted
    assert "spinup-watchdog.service" not in wanted  # started by its timer


def test_only_the_lifecycle_agent_runs_at_boot() -> None:
    """A warm-pool instance being initialized must not start the GPU stack: spinup.target is
    not enabled; the agent starts it when the instance goes into service."""
    assert _lines("spinup-lifecycle.service", "WantedBy") == "WantedBy=multi-user.target"
    for unit in UNITS:
        if unit != "spinup-lifecycle.service":
            assert _lines(unit, "WantedBy") == "", unit


def test_the_agent_neither_holds_the_boot_nor_waits_on_the_target() -> None:
    """It starts spinup.target and then waits for the backend: an ordering between the two
    would make that start wait for the agent's end (a dead lock until the ready bound)."""
    assert _lines("spinup-lifecycle.service", "Type") == "Type=exec"
    for unit, other in (("spinup-lifecycle.service", "spinup"), ("spinup.target", "lifecycle")):
        ordering = _lines(unit, "After") + _lines(unit, "Before")
        assert f"{other}.target" not in ordering
        assert "spinup-lifecycle" not in _lines("spinup.target", "After")
    exec_start = _lines("spinup-lifecycle.service", "ExecStart")
    assert exec_start == "ExecStart=/usr/bin/python3 -m gpu_host.bootstrap.lifecycle"


@pytest.mark.parametrize(
    ("unit", "after"),
    [
        ("spinup-config.service", "docker.service"),
        ("spinup-triton.service", "spinup-config.service"),
        ("spinup-backend.service", "spinup-triton.service"),
    ],
)
def test_boot_order(unit: str, after: str) -> None:
    text = (SYSTEMD_DIR / unit).read_text(encoding="utf-8")
    afters = " ".join(line for line in text.splitlines() if line.startswith("After="))
    assert after in afters


def test_watchdog_powers_off_only_on_its_exit_status() -> None:
    from gpu_host.bootstrap.watchdog import POWER_OFF_EXIT

    assert _lines("spinup-watchdog.service", "SuccessExitStatus") == (
        f"SuccessExitStatus={POWER_OFF_EXIT}"
    )
    assert f'"$EXIT_STATUS" = {POWER_OFF_EXIT}' in _lines("spinup-watchdog.service", "ExecStopPost")
