"""Child processes that never outlive the local mode (on the instance, systemd does this).

Each child gets its own process group (so a terminal's Ctrl-C reaches only us and we stop
children in order) and the kernel's parent-death signal (so even a SIGKILLed parent leaves
nothing behind). Linux ties that signal to the *thread* that spawned the child: spawn from a
thread that lives as long as the child should.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_S = 10.0


def die_with_parent() -> None:
    """In a child, before exec: the kernel sends it SIGTERM when its parent (thread) dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` with `env`, its output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


def terminate(
    proc: subprocess.Popen[bytes], *, name: str, timeout_s: float = STOP_TIMEOUT_S
) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after `timeout_s`."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in %.0f s; killing it", name, timeout_s)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()
