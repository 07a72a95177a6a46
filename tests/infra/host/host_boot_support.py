"""Shared by the host tests (a distinctive module name: `from host_boot_support import …`)."""

from __future__ import annotations

import shlex
from typing import Final

from infra.paths import GPU_HOST_DIR, SYSTEMD_DIR

BOOTSTRAP_DIR: Final = GPU_HOST_DIR / "bootstrap"
EXEC_KEYS: Final = frozenset(
    {"ExecStartPre", "ExecStart", "ExecStartPost", "ExecStop", "ExecStopPost"}
)


def exec_lines(unit: str, keys: frozenset[str] = EXEC_KEYS) -> list[str]:
    """The commands of `unit`'s Exec* lines among `keys`, without systemd's prefixes."""
    commands = []
    for line in (SYSTEMD_DIR / unit).read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key in keys:
            commands.append(value.lstrip("+-!@"))
    return commands


def docker_run(unit: str) -> list[str]:
    """The argv of `unit`'s `ExecStart=/usr/bin/docker run ...`."""
    (command,) = exec_lines(unit, frozenset({"ExecStart"}))
    argv = shlex.split(command)
    assert argv[:2] == ["/usr/bin/docker", "run"], command
    return argv


def images() -> dict[str, str]:
    """images.env: the image names and digests."""
    lines = (BOOTSTRAP_DIR / "images.env").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


__all__ = ["BOOTSTRAP_DIR", "SYSTEMD_DIR", "docker_run", "exec_lines", "images"]
