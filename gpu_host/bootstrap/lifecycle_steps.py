"""The machine's side of the lifecycle steps (`lifecycle.Steps`): commands, readiness, marker.

*Initialize* runs `spinup-bootstrap initialize` (install the release, pull the images: what
`bootstrap.sh` installs) once: the marker is written only after it succeeded, and a second
call finds it and does nothing. *Start* asks systemd for `spinup.target` without waiting for
it (the target's first unit may install a newer release). *Await ready* polls the backend's
`/health/ready` (200 once Triton's models are loaded and a warm-up inference passed). Every
wait calls `pulse` about once a second, which sends the hook's heartbeat when one is due.

Standard library only and Python 3.9 compatible (see `lifecycle.py`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from gpu_host.bootstrap.lifecycle import LifecycleSettings, Pulse

log = logging.getLogger("spinup.lifecycle")

INITIALIZE_COMMAND: Final = ("/usr/local/sbin/spinup-bootstrap", "initialize")
START_COMMAND: Final = ("/usr/bin/systemctl", "start", "--no-block", "spinup.target")
START_TIMEOUT_S: Final = 120.0
_STOP_GRACE_S: Final = 30.0


def run_command(
    argv: Sequence[str], *, timeout_s: float, pulse: Pulse, poll_s: float = 1.0
) -> bool:
    """Run `argv` to its end (output goes to the journal with ours), pulsing while it runs.
    Past `timeout_s` it is terminated (then killed) and counts as failed."""
    try:
        process = subprocess.Popen(list(argv))
    except OSError as exc:
        log.error("cannot run %s: %s", argv[0], exc)
        return False
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            code = process.wait(timeout=max(0.0, min(poll_s, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                log.error("%s ran longer than %.0f s; stopping it", " ".join(argv), timeout_s)
                _stop(process)
                return False
            pulse()
            continue
        if code != 0:
            log.error("%s exited with %d", " ".join(argv), code)
        return code == 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def http_ready(url: str, *, timeout_s: float = 5.0) -> bool:
    """Whether `url` answers 200 (any error, refusal or other status: not yet)."""
    # The backend is on loopback: never through a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return int(response.status) == 200
    except (OSError, ValueError):  # HTTPError, URLError and timeouts are OSErrors
        return False


def await_condition(
    probe: Callable[[], bool],
    *,
    timeout_s: float,
    pulse: Pulse,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], object] = time.sleep,
) -> bool:
    """Poll `probe` until it holds (True) or `timeout_s` passes (False), pulsing meanwhile."""
    deadline = clock() + timeout_s
    while True:
        if probe():
            return True
        if clock() >= deadline:
            return False
        pulse()
        pause(poll_s)


@dataclass(frozen=True)
class Marker:
    """`path` exists once initialization succeeded on this instance's root volume."""

    path: Path

    def exists(self) -> bool:
        return self.path.is_file()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 (3.10)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(f"initialized {at}\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class HostSteps:
    """`lifecycle.Steps` on a real host (or, in tests, with harmless commands)."""

    marker: Marker
    initialize_command: tuple[str, ...] = INITIALIZE_COMMAND
    start_command: tuple[str, ...] = START_COMMAND
    initialize_timeout_s: float = 7200.0
    start_timeout_s: float = START_TIMEOUT_S
    ready_timeout_s: float = 1200.0
    ready_url: str = "http://127.0.0.1:8080/health/ready"
    poll_s: float = 1.0
    ready_probe: Callable[[str], bool] = field(default=http_ready)

    @classmethod
    def for_host(cls, settings: LifecycleSettings) -> HostSteps:
        return cls(
            marker=Marker(settings.marker),
            initialize_timeout_s=settings.initialize_timeout_s,
            ready_timeout_s=settings.ready_timeout_s,
            ready_url=settings.ready_url,
        )

    def initialized(self) -> bool:
        return self.marker.exists()

    def initialize(self, pulse: Pulse) -> bool:
        if self.marker.exists():
            log.info("already initialized (%s)", self.marker.path)
            return True
        if not run_command(
            self.initialize_command,
            timeout_s=self.initialize_timeout_s,
            pulse=pulse,
            poll_s=self.poll_s,
        ):
            return False
        self.marker.write()
        return True

    def start(self, pulse: Pulse) -> bool:
        return run_command(
            self.start_command, timeout_s=self.start_timeout_s, pulse=pulse, poll_s=self.poll_s
        )

    def await_ready(self, pulse: Pulse) -> bool:
        url = self.ready_url
        ready = await_condition(
            lambda: self.ready_probe(url),
            timeout_s=self.ready_timeout_s,
            pulse=pulse,
            poll_s=self.poll_s,
        )
        if not ready:
            log.error("%s not ready within %.0f s", url, self.ready_timeout_s)
        return ready
