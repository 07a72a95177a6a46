"""The systemd units, checked offline: `systemd-analyze verify` (any output is a failure: it
only warns about unknown keys and bad values) and the backend's hardening score."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.infra.host.host_boot_support import SYSTEMD_DIR

UNITS = sorted(p.name for p in SYSTEMD_DIR.iterdir())
HARDENED = ("spinup-backend.service", "spinup-config.service", "spinup-watchdog.service")


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
        "spinup-release.service",
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


@pytest.mark.parametrize(("unit", "threshold"), [(u, 2.0) for u in HARDENED])
def test_hardening_exposure_is_low(unit_root: Path, unit: str, threshold: float) -> None:
    result = _analyze(
        unit_root, "security", "--offline=yes", f"etc/systemd/system/{unit}", "--no-pager"
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= threshold


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
        ("spinup-config.service", "spinup-release.service"),
        ("spinup-triton.service", "spinup-config.service"),
        ("spinup-backend.service", "spinup-triton.service"),
    ],
)
def test_boot_order(unit: str, after: str) -> None:
    text = (SYSTEMD_DIR / unit).read_text(encoding="utf-8")
    afters = " ".join(line for line in text.splitlines() if line.startswith("After="))
    assert after in afters


def test_backend_listens_on_loopback_only() -> None:
    text = (SYSTEMD_DIR / "spinup-backend.service").read_text(encoding="utf-8")
    assert "--host 127.0.0.1 --port 8080" in text
