"""Reading `--labels`: a text file, one class name a line, or a JSON list of strings."""

from __future__ import annotations

import json
from pathlib import Path

from gpu_host.models.add.errors import AddError


def read_labels(path: Path) -> tuple[str, ...]:
    """The class names in `path`, in training order (blank lines of a text file skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AddError(f"cannot read the labels file {path}: {exc}") from exc
    if text.lstrip().startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise AddError(f"labels file {path}: not a JSON list: {exc}") from exc
        if not isinstance(parsed, list) or not all(isinstance(s, str) and s for s in parsed):
            raise AddError(f"labels file {path}: the JSON must be a list of non-empty strings")
        labels = tuple(parsed)
    else:
        labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not labels:
        raise AddError(f"labels file {path} names no class")
    return labels
