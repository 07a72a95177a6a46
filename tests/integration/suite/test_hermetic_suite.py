"""The suite is hermetic: neither the user's exported `SPINUP_*` settings nor a model they
declare in `gpu_host/models/user/` (docs/models.md) changes a test's outcome.

This runs the tests that read settings or the model catalog in a copy of the checkout whose
`gpu_host/models/user/` declares a model, in an environment that exports settings a user
plausibly has (the README's `SPINUP_IDLE_AFTER_DISCONNECT_S=30`, …). The declaration names an
ONNX file that is not there, so any read of that folder fails: a test that passes read
nothing from it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.hermetic import clean_environ

REPO = Path(__file__).resolve().parents[3]

USER_SETTINGS = {
    "SPINUP_IDLE_AFTER_DISCONNECT_S": "30",
    "SPINUP_MAX_SESSIONS_PER_USER": "20",
    "SPINUP_MODELS": "detect",
    "SPINUP_DEFAULT_MODELS": "pose",
    "SPINUP_LOCAL_SERVED_MODELS": "text",
    "SPINUP_WORKERS": "3",
    "SPINUP_LOCAL_BACKEND_WORKERS": "4",
}

SENSITIVE_TESTS = (
    "tests/unit/support/test_hermetic.py",
    "tests/unit/control/test_settings.py",
    "tests/unit/domain/test_stop_rules.py",
    "tests/unit/gpu_host/test_backend_settings.py",
    "tests/unit/gpu_host/test_model_repository.py",
    "tests/unit/gpu_host/test_user_models.py",
    "tests/unit/models/test_add_model.py",
    "tests/unit/local/test_settings.py",
    "tests/infra/cdk/test_cdk_config.py",
)
"""The modules that read the environment's settings or the model catalog."""

NOT_COPIED = (
    ".git",
    ".venv*",
    "node_modules",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    ".run",
    "cdk.out",
    "test-artifacts",
    "zoo",
    "user",
)


def checkout_with_a_user_model(root: Path) -> Path:
    """A copy of the checkout (sources and tests; the model zoo linked, not copied) whose
    user-model folder declares `yolov8n`, as docs/models.md's step 3 does."""
    copy = root / "checkout"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(*NOT_COPIED))
    models = copy / "gpu_host" / "models"
    (models / "zoo").symlink_to(REPO / "gpu_host" / "models" / "zoo")
    (models / "user").mkdir()
    declared = {
        "name": "yolov8n",
        "file": "yolov8n.onnx",
        "layout": "yolov8-detect",
        "input_size": 640,
        "max_batch_size": 8,
    }
    (models / "user" / "user_models.json").write_text(json.dumps({"models": [declared]}))
    return copy


def test_exported_settings_and_a_user_model_change_no_outcome(tmp_path: Path) -> None:
    checkout = checkout_with_a_user_model(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SENSITIVE_TESTS],
        cwd=checkout,
        env=clean_environ(**USER_SETTINGS),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
