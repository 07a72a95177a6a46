"""Where the things the CDK app packages live in the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
PYPROJECT: Final = REPO_ROOT / "pyproject.toml"
LAMBDAS_DIR: Final = REPO_ROOT / "lambdas"
FRONTEND_DIR: Final = REPO_ROOT / "frontend"
GPU_HOST_DIR: Final = REPO_ROOT / "gpu_host"
SYSTEMD_DIR: Final = REPO_ROOT / "systemd"
