"""The backend's process model: one supervisor, `SPINUP_WORKERS` worker processes, one port.

The supervisor (`python -m gpu_host.backend`, what systemd and the local mode run) binds the
listening socket once and starts the workers (`gpu_host.backend.worker`), which inherit it:
each accepts from the same queue, so a new connection goes to whichever worker is first to
take it — an idle one, whose event loop is waiting, before a busy one. A worker is one
process with its own app and Triton client; Triton's dynamic batcher merges the workers'
requests. What must hold across workers lives in the host store (`host_store`), which the
supervisor creates afresh at start, with the Prometheus multiprocess directory beside it.

- A worker that exits, for whatever reason (SIGKILL, a crash, a SIGTERM sent to it alone —
  which drains its sessions first), is replaced: the supervisor removes the dead worker's
  sessions from the store, folds its metric files into the archive (`metrics.forget_worker`)
  and asks a live worker to report the host's session count now (REPORT_SIGNAL), then starts
  another; a
  worker that keeps dying within QUICK_EXIT_S of its start is restarted after a growing
  delay (`restart_delay`). One that fails to start (exit STARTUP_FAILURE: the settings or
  the app are broken, and would be for every worker) stops the backend instead, nonzero.
- SIGTERM or SIGINT to the supervisor drains all: it stops accepting, sends SIGTERM to every
  worker (each sends its sessions the `shutdown` notice and closes them with 1001), waits up
  to DRAIN_TIMEOUT_S, kills what is left, and exits 0.
- Workers run in sessions of their own, so that a terminal's Ctrl-C or the local mode's
  process-group signal reaches the supervisor alone, which then stops them in order; and
  with the kernel's parent-death signal, so that none outlives a supervisor killed outright.

- Without `SPINUP_STATE_DIR` (the local mode), the state lives in a temporary directory named
  after the supervisor's pid; a supervisor killed outright cannot remove its own, so each
  start removes those of supervisors that no longer run (`remove_stale_state_dirs`), and
  the shared-memory objects of workers that no longer run (`triton_shm`).

The supervisor is single-threaded and waits on one file descriptor: the signals it handles
(SIGTERM, SIGINT, SIGCHLD) are written to it by the interpreter (`signal.set_wakeup_fd`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from uvicorn.config import STARTUP_FAILURE

from gpu_host.backend.host_store import HostStore, pid_alive
from gpu_host.backend.metrics import MULTIPROC_ENV, forget_worker
from gpu_host.backend.reporter import REPORT_SIGNAL
from gpu_host.backend.settings import Settings
from gpu_host.backend.triton_shm import remove_objects_of, remove_objects_of_the_dead
from gpu_host.triton.processes import die_with_parent

log = logging.getLogger(__name__)

LOG_FORMAT: Final = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
"""The supervisor's and the workers' (one log, several processes: the pid says whose)."""
DRAIN_TIMEOUT_S: Final = 15.0
"""How long the workers get to drain (uvicorn gives sessions 5 s); under systemd's 30 s."""
QUICK_EXIT_S: Final = 10.0
"""A worker that exits sooner after its start counts towards the restart delay."""
MAX_RESTART_DELAY_S: Final = 30.0
BACKLOG: Final = 2048
"""The listening socket's accept queue (uvicorn's default)."""
METRICS_SUBDIR: Final = "metrics"
STATE_DIR_PREFIX: Final = "spinup-backend-"
"""A temporary state directory is `spinup-backend-<supervisor pid>-<random>`."""
_STOP_SIGNALS: Final = frozenset({signal.SIGTERM, signal.SIGINT})


def restart_delay(quick_exits: int) -> float:
    """How long to wait before replacing a worker that is the `quick_exits`-th in a row to
    exit within QUICK_EXIT_S of its start: at once for the first, then 1 s, doubling, up to
    MAX_RESTART_DELAY_S — a crash loop must not spin the CPU or flood the log."""
    if quick_exits <= 1:
        return 0.0
    return float(min(2.0 ** (quick_exits - 2), MAX_RESTART_DELAY_S))


def exit_description(returncode: int) -> str:
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


def state_dir_owner(name: str) -> int | None:
    """The supervisor pid in a temporary state directory's name; None if not one of ours."""
    if not name.startswith(STATE_DIR_PREFIX):
        return None
    pid, _, rest = name.removeprefix(STATE_DIR_PREFIX).partition("-")
    return int(pid) if pid.isdigit() and rest else None


def stale_state_dirs(parent: Path, alive: Callable[[int], bool] = pid_alive) -> list[Path]:
    """This user's temporary state directories in `parent` whose supervisor is dead (killed
    outright: one that exits removes its own). A reused pid keeps a directory until a later
    start finds it stale; nothing live is ever removed."""
    uid = os.getuid()
    stale = []
    for path in parent.glob(f"{STATE_DIR_PREFIX}*"):
        owner = state_dir_owner(path.name)
        with contextlib.suppress(OSError):  # gone meanwhile: another start removed it
            mine = owner is not None and path.lstat().st_uid == uid and path.is_dir()
            if mine and owner is not None and not alive(owner):
                stale.append(path)
    return stale


def remove_stale_state_dirs(parent: Path, alive: Callable[[int], bool] = pid_alive) -> None:
    for path in stale_state_dirs(parent, alive):
        log.info("removing %s: its supervisor is gone", path)
        shutil.rmtree(path, ignore_errors=True)


def report_target(workers: list[tuple[float, int]]) -> int | None:
    """Of the live workers (start time, pid), the one to ask for a session-count report:
    the longest running, the likeliest to be up. None when there is none: the replacement
    reports the count when it starts."""
    return min(workers)[1] if workers else None


@dataclass(slots=True)
class _Slot:
    """One worker's place: the process in it, or when the next one starts."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0
    start_at: float = 0.0
    """When an empty slot gets its (next) worker."""


class Supervisor:
    def __init__(
        self,
        *,
        workers: int,
        listener: socket.socket,
        host: str,
        port: int,
        state_dir: Path,
        environ: Mapping[str, str],
    ) -> None:
        self._listener = listener
        self._host = host
        self._port = port
        self._metrics_dir = state_dir / METRICS_SUBDIR
        self._reset_metrics()
        self._store = HostStore.create(state_dir)
        self._env = {
            **environ,
            "SPINUP_STATE_DIR": str(state_dir),
            MULTIPROC_ENV: str(self._metrics_dir),
        }
        self._slots = [_Slot(index) for index in range(workers)]
        self._failed = False

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (0) or a worker that cannot start (1)."""
        with _signals_on_a_pipe() as wakeups:
            try:
                self._serve(wakeups)
            finally:
                self._drain(wakeups)
                self._store.close()
        return 1 if self._failed else 0

    def _serve(self, wakeups: socket.socket) -> None:
        log.info(
            "backend supervisor [%d] on %s:%d: %d workers",
            os.getpid(),
            self._host,
            self._port,
            len(self._slots),
        )
        while not self._failed:
            self._reap()
            self._start_due()
            if _STOP_SIGNALS & _wait(wakeups, self._next_start()):
                log.info("stopping: draining %d workers", len(self._live()))
                return

    def _live(self) -> list[subprocess.Popen[bytes]]:
        return [slot.proc for slot in self._slots if slot.proc is not None]

    def _next_start(self) -> float | None:
        """Seconds until an empty slot is due; None when every slot has a worker."""
        due = [slot.start_at for slot in self._slots if slot.proc is None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _start_due(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.proc is None and slot.start_at <= now and not self._failed:
                slot.proc = self._spawn()
                slot.started_at = now
                log.info("worker %d started (pid %d)", slot.index, slot.proc.pid)

    def _spawn(self) -> subprocess.Popen[bytes]:
        fd = self._listener.fileno()
        argv = [
            sys.executable,
            "-m",
            "gpu_host.backend.worker",
            "--fd",
            str(fd),
            "--metrics-dir",
            str(self._metrics_dir),
            "--host",
            self._host,
            "--port",
            str(self._port),
        ]
        return subprocess.Popen(
            argv,
            env=self._env,
            pass_fds=(fd,),
            start_new_session=True,
            preexec_fn=_prepare_worker,  # single-threaded parent: safe
        )

    def _reap(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            proc = slot.proc
            if proc is None or proc.poll() is None:
                continue
            slot.proc = None
            lived = now - slot.started_at
            self._forget(proc.pid)
            log.warning(
                "worker %d (pid %d) ended with %s after %.1f s",
                slot.index,
                proc.pid,
                exit_description(proc.returncode),
                lived,
            )
            if proc.returncode == STARTUP_FAILURE:
                log.error("worker %d could not start: stopping the backend", slot.index)
                self._failed = True
                continue
            slot.quick_exits = slot.quick_exits + 1 if lived < QUICK_EXIT_S else 0
            slot.start_at = now + restart_delay(slot.quick_exits)

    def _forget(self, pid: int, *, report: bool = True) -> None:
        """What a dead worker leaves: its sessions in the store, its metric files, its
        shared-memory objects (`triton_shm`, left when it was killed); and the host record's
        session count, stale until a worker reports it (`report`)."""
        purged = self._store.purge_worker(pid)
        if purged:
            log.info("removed %d sessions of worker pid %d", purged, pid)
        forget_worker(self._metrics_dir, pid)
        for path in remove_objects_of(pid):
            log.info("removed shared memory %s of worker pid %d", path.name, pid)
        if report and purged:
            self._ask_for_report()

    def _ask_for_report(self) -> None:
        live = [(s.started_at, s.proc.pid) for s in self._slots if s.proc is not None]
        target = report_target(live)
        if target is None:
            return
        # A worker that has not installed its handler yet ignores the signal (see
        # `_prepare_worker`), and reports the count, read after the purge, when it starts.
        with contextlib.suppress(ProcessLookupError):  # died meanwhile: reaped next
            os.kill(target, REPORT_SIGNAL)

    def _drain(self, wakeups: socket.socket) -> None:
        self._listener.close()  # our copy: the workers close theirs as they drain
        for proc in self._live():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self._live() and (left := deadline - time.monotonic()) > 0:
            _wait(wakeups, left)  # further stop signals change nothing: we are stopping
            self._reap_all()
        for proc in self._live():
            log.warning(
                "worker pid %d did not drain in %.0f s: killing it", proc.pid, DRAIN_TIMEOUT_S
            )
            proc.kill()
            proc.wait()
        self._reap_all()

    def _reap_all(self) -> None:
        for slot in self._slots:
            if slot.proc is not None and slot.proc.poll() is not None:
                self._forget(slot.proc.pid, report=False)  # stopping: nobody to report
                slot.proc = None

    def _reset_metrics(self) -> None:
        """The library's rule: the directory is emptied before the workers start."""
        shutil.rmtree(self._metrics_dir, ignore_errors=True)
        self._metrics_dir.mkdir(parents=True)


def _prepare_worker() -> None:
    """In the forked child, before the worker's exec: die with the supervisor, and ignore
    REPORT_SIGNAL (inherited across exec) until the worker's app handles it — by default
    it would end the process."""
    die_with_parent()
    signal.signal(REPORT_SIGNAL, signal.SIG_IGN)


@contextlib.contextmanager
def _signals_on_a_pipe() -> Iterator[socket.socket]:
    """A socket that receives one byte per SIGTERM, SIGINT and SIGCHLD (their numbers).
    The handlers do nothing themselves: installing one is what makes the interpreter write
    the byte."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
    previous = {sig: signal.signal(sig, _nothing) for sig in handled}
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        yield reader
    finally:
        signal.set_wakeup_fd(old_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reader.close()
        writer.close()


def _nothing(signum: int, frame: object) -> None:
    return None


def _wait(wakeups: socket.socket, timeout_s: float | None) -> set[int]:
    """Wait for a signal (or `timeout_s`); the signals that arrived."""
    select.select([wakeups], [], [], timeout_s)
    received: set[int] = set()
    with contextlib.suppress(BlockingIOError):
        while data := wakeups.recv(256):
            received.update(data)
    return received


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker inherits."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=BACKLOG)
    listener.set_inheritable(True)
    return listener


@contextlib.contextmanager
def state_directory(configured: Path | None) -> Iterator[Path]:
    """`configured`, or a private temporary directory removed at exit — and, should this
    process be killed outright, by the next supervisor's start on this machine."""
    if configured is not None:
        yield configured
        return
    remove_stale_state_dirs(Path(tempfile.gettempdir()))
    prefix = f"{STATE_DIR_PREFIX}{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix) as made:
        yield Path(made)


def supervise(settings: Settings, *, host: str, port: int) -> int:
    """Run the backend until SIGTERM/SIGINT; the process's exit status."""
    for path in remove_objects_of_the_dead(pid_alive):
        log.info("removed shared memory %s: its worker is gone", path.name)
    with bind(host, port) as listener, state_directory(settings.state_dir) as state_dir:
        supervisor = Supervisor(
            workers=settings.workers,
            listener=listener,
            host=host,
            port=port,
            state_dir=state_dir,
            environ=os.environ,
        )
        return supervisor.run()
