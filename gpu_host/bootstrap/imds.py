"""The instance metadata service (IMDSv2), the one place a host learns who it is.

A host of the fleet has no identity in SSM or in its user data: its instance id and its Auto
Scaling target lifecycle state come from here. IMDSv2 only (the launch template requires
tokens): PUT a session token, then GET with it.
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html

Standard library only and Python 3.9 compatible: the lifecycle agent runs it with the
host's system Python before any release is installed.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from typing import Final

DEFAULT_URL: Final = "http://169.254.169.254"
TOKEN_TTL_S: Final = 21600
INSTANCE_ID: Final = re.compile(r"^i-[0-9a-f]{8,17}$")
_INSTANCE_ID_PATH: Final = "instance-id"
_TARGET_STATE_PATH: Final = "autoscaling/target-lifecycle-state"


class ImdsError(Exception):
    """The metadata service did not answer usefully (unreachable, timeout, an error status,
    or an instance id that is not one)."""


class Imds:
    """A small IMDSv2 client; the token is fetched once and renewed when refused."""

    def __init__(self, base_url: str = DEFAULT_URL, *, timeout_s: float = 2.0) -> None:
        self._base = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._token: str | None = None
        # The metadata service is link-local: a proxy from the environment must never see it.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, path: str) -> str | None:
        """The item at `latest/meta-data/<path>`, or None when this instance has none (404)."""
        for attempt in range(2):
            request = urllib.request.Request(
                f"{self._base}/latest/meta-data/{path}",
                headers={"X-aws-ec2-metadata-token": self._session_token()},
            )
            try:
                with self._opener.open(request, timeout=self._timeout_s) as response:
                    return str(response.read().decode("utf-8")).strip()
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                if exc.code == 401 and attempt == 0:  # the token expired: get another
                    self._token = None
                    continue
                raise ImdsError(f"GET {path}: HTTP {exc.code}") from exc
            except OSError as exc:
                raise ImdsError(f"GET {path}: {exc}") from exc
        raise ImdsError(f"GET {path}: the token was refused twice")

    def instance_id(self) -> str:
        value = self.get(_INSTANCE_ID_PATH)
        if value is None or not INSTANCE_ID.fullmatch(value):
            raise ImdsError(f"not an instance id: {value!r}")
        return value

    def target_lifecycle_state(self) -> str | None:
        """The Auto Scaling lifecycle state this instance is moving to (e.g. `InService`,
        `Warmed:Stopped`), or None when it belongs to no Auto Scaling group."""
        return self.get(_TARGET_STATE_PATH) or None

    def _session_token(self) -> str:
        if self._token is None:
            request = urllib.request.Request(
                f"{self._base}/latest/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_S)},
            )
            try:
                with self._opener.open(request, timeout=self._timeout_s) as response:
                    self._token = str(response.read().decode("ascii")).strip()
            except OSError as exc:  # HTTPError included
                raise ImdsError(f"PUT api/token: {exc}") from exc
        return self._token
