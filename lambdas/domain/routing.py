"""The socket path scheme, one source for the control plane, the CloudFront Function and the
local web front: a session on host H connects to `/ws/H/inference`; the router looks H up and
forwards the request to H's origin as `/ws/inference` (the backend's own path)."""

from __future__ import annotations

import re
from typing import Final

WS_PREFIX: Final = "/ws/"
WS_HOST_SUFFIX: Final = "/inference"
BACKEND_PATH: Final = "/ws/inference"
HOST_ID_PATTERN: Final = r"[A-Za-z0-9_.-]{1,64}"
_ROUTED = re.compile(rf"/ws/({HOST_ID_PATTERN})/inference")


def routed_path(host_id: str) -> str:
    return f"{WS_PREFIX}{host_id}{WS_HOST_SUFFIX}"


def host_of(path: str) -> str | None:
    """The host a routed socket path names, or None when the path is not one."""
    match = _ROUTED.fullmatch(path)
    return match.group(1) if match else None
