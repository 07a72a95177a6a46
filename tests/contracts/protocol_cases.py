"""The socket protocol's shared cases, for the Python tests that run them (the node tests read
the same protocol_cases.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

PROTOCOL_CASES: Final[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "protocol_cases.json").read_text(encoding="utf-8")
)
