"""Writing the model file and its `user_models.json` entry, all or nothing.

Each file is written to a temporary file in the same folder and moved over with `os.replace`
(atomic on one file system), the model first; if the declaration then fails, the model
file is removed again, so a refusal or a crash leaves the folder as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import onnx

from gpu_host.models.add.errors import AddError
from gpu_host.models.user_models import UserModel, UserModelsFile


def read_declarations(path: Path) -> dict[str, Any]:
    """The declaration file as JSON (an empty one when it does not exist yet)."""
    if not path.is_file():
        return {"models": []}
    try:
        declared: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        UserModelsFile.model_validate(declared)
    except ValueError as exc:  # JSONDecodeError and ValidationError are ValueErrors
        raise AddError(f"{path} is broken; fix it first: {exc}") from exc
    return declared


def install(
    model: onnx.ModelProto, entry: UserModel, declarations: Path, declared: dict[str, Any]
) -> Path:
    """Write `model` as `entry.file` next to `declarations` and append `entry` to it."""
    folder = declarations.parent
    target = folder / entry.file
    if target.exists():
        raise AddError(f"{target} exists already (not declared?): move it away or pick a name")
    updated = {**declared, "models": [*declared.get("models", []), _as_json(entry)]}
    UserModelsFile.model_validate(updated)  # what is written must read back
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, model.SerializeToString())
    try:
        text = json.dumps(updated, indent=2, ensure_ascii=False) + "\n"
        _write_atomically(declarations, text.encode("utf-8"))
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def _as_json(entry: UserModel) -> dict[str, Any]:
    """Only what differs from the defaults, so the entry reads like a hand-written one."""
    out: dict[str, Any] = entry.model_dump(mode="json", exclude_defaults=True)
    out["name"], out["file"], out["layout"] = entry.name, entry.file, entry.layout
    return out


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
