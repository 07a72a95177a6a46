"""Shared by the host tests (a distinctive module name: `from host_boot_support import …`)."""

from __future__ import annotations

from typing import Final

from infra.paths import GPU_HOST_DIR, SYSTEMD_DIR

BOOTSTRAP_DIR: Final = GPU_HOST_DIR / "bootstrap"

__all__ = ["BOOTSTRAP_DIR", "SYSTEMD_DIR"]
