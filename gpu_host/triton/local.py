"""Run the real `tritonserver` on the CPU from the nvidia-pytriton wheel, with the local repository.

The wheel ships Triton 2.51 with only the Python backend; `gpu_host.models.repository`'s `local`
target gives every model a `model.py` that runs ONNX Runtime. The server runs in its own
process group and dies with its parent, so neither a crash nor a SIGKILLed test run leaves a
`tritonserver` (or its Python stubs) behind.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from gpu_host.backend.triton_shm import SHM_DIR
from gpu_host.models.repository import Target, select_specs, write_repository
from gpu_host.models.spec import USER_MODELS_FILE, ZOO_DIR, model_catalog
from gpu_host.triton.processes import spawn, terminate

log = logging.getLogger(__name__)


class LocalTritonError(RuntimeError):
    """tritonserver could not be set up, did not become ready, or died."""


@dataclass(frozen=True, slots=True)
class TritonDist:
    """The pieces of the nvidia-pytriton wheel inside a venv that running Triton needs."""

    server: Path
    python_backend: Path
    stub: Path
    bundled_libs: Path
    """The wheel's vendored shared libraries (libcudart, …). The stub finds them through an
    RPATH relative to its own location, which a copied stub loses."""
    venv_bin: Path
    libdir: Path

    @classmethod
    def find(cls, venv: Path) -> TritonDist:
        python = venv / "bin" / "python"
        if not python.exists():
            raise LocalTritonError(f"no Python in the Triton venv {venv}")
        roots = sorted(venv.glob("lib/python3.*/site-packages/pytriton/tritonserver"))
        if not roots:
            raise LocalTritonError(f"nvidia-pytriton is not installed in {venv}")
        root = roots[-1]
        py_version = root.parents[2].name.removeprefix("python")  # "3.11"
        dist = cls(
            server=root / "bin" / "tritonserver",
            python_backend=root / "backends" / "python",
            stub=root / "python_backend_stubs" / py_version / "triton_python_backend_stub",
            bundled_libs=root.parents[1] / "nvidia_pytriton.libs",
            venv_bin=venv / "bin",
            libdir=_libdir(python),
        )
        parts = (dist.server, dist.python_backend, dist.stub, dist.bundled_libs)
        missing = [p for p in parts if not p.exists()]
        if missing:
            raise LocalTritonError(f"incomplete nvidia-pytriton in {venv}: missing {missing}")
        return dist


def _libdir(python: Path) -> Path:
    """The interpreter's LIBDIR. The stub must load THIS libpython: with pyenv it otherwise
    picks the system one and crashes ('_thread.RLock' object has no attribute …)."""
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return Path(out.stdout.strip())


class LocalTriton:
    """The real tritonserver on the CPU, serving the `local` repository of `models` (names from
    the built-in specs and those `user_models` declares; all of them when None).
    `load_models`: explicit model control, loading only these at start (None: all of them).

    Use as a context manager, or call `start()` and `stop()`. `start()` returns once Triton
    answers ready on HTTP (with strict readiness: every model loaded).

    `cpu_threads` defaults to ONE ONNX Runtime thread per model: locally Triton shares a few
    cores with the browser, the backend and the control plane, and on a busy 2-core machine
    one thread measured about twice as fast as letting ORT take every core.

    The server gets the kernel's parent-death signal, which Linux ties to the *thread* that
    started it: call `start()` from a thread that lives as long as the server should.
    """

    def __init__(
        self,
        *,
        run_dir: Path,
        triton_venv: Path,
        http_port: int = 8100,
        grpc_port: int = 8101,
        metrics_port: int = 8102,
        models: Sequence[str] | None = None,
        load_models: Sequence[str] | None = None,
        zoo_dir: Path = ZOO_DIR,
        user_models: Path | None = USER_MODELS_FILE,
        cpu_threads: int = 1,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 120.0,
        stop_timeout_s: float = 15.0,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.run_dir = run_dir.absolute()
        self.triton_venv = triton_venv.absolute()
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.metrics_port = metrics_port
        self.models = list(models) if models is not None else None
        self.load_models = list(load_models) if load_models is not None else None
        self.zoo_dir = zoo_dir
        self.user_models = user_models
        self.cpu_threads = cpu_threads
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._base_env = base_env
        self._proc: subprocess.Popen[bytes] | None = None
        self.shm_prefix = f"spinup_triton_{os.getpid()}_{secrets.token_hex(4)}_"
        """The Python backend's shared-memory regions are named after this (its default
        prefix is every server's): `stop()` deletes the ones its stubs leave behind."""

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "tritonserver.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> LocalTriton:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._proc is not None:
            raise LocalTritonError("already started")
        dist = TritonDist.find(self.triton_venv)
        repository = self.run_dir / "models"
        if repository.exists():
            shutil.rmtree(repository)  # a stale model left there would be served too
        write_repository(
            repository,
            Target.LOCAL,
            select_specs(self.models, model_catalog(self.user_models)),
            zoo_dir=self.zoo_dir,
            cpu_threads=self.cpu_threads,
        )
        backends = self._assemble_backends(dist)
        argv = [
            str(dist.server),
            f"--model-repository={repository}",
            f"--backend-directory={backends}",
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
            "--exit-on-error=true",
            "--strict-readiness=true",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
        ]
        if self.load_models is not None:
            # Explicit model control: only these load at start; the backend loads others
            # through the repository API (gpu_host.backend.model_loader).
            argv.append("--model-control-mode=explicit")
            argv.extend(f"--load-model={name}" for name in self.load_models)
        env = dict(os.environ if self._base_env is None else self._base_env)
        # The Python stub must find the Triton venv's packages (NumPy 1.x, onnxruntime) and
        # load that interpreter's libpython.
        env["PATH"] = os.pathsep.join([str(dist.venv_bin), env.get("PATH", "")])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p
            for p in (str(dist.libdir), str(dist.bundled_libs), env.get("LD_LIBRARY_PATH", ""))
            if p
        )
        env["VIRTUAL_ENV"] = str(self.triton_venv)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self._proc = spawn(argv, env=env, log_path=self.log_path, cwd=self.run_dir)
        log.info("tritonserver pid %d starting (log %s)", self._proc.pid, self.log_path)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.info("tritonserver ready in %.1f s", time.monotonic() - started)

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it after `stop_timeout_s`; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        terminate(proc, name="tritonserver", timeout_s=self.stop_timeout_s)
        log.info("tritonserver stopped (exit %s)", proc.returncode)
        # The stubs leave their regions behind (≈1 MB each), even on a clean exit.
        for region in SHM_DIR.glob(f"{self.shm_prefix}*"):
            region.unlink(missing_ok=True)

    def _assemble_backends(self, dist: TritonDist) -> Path:
        """`<run>/backends/python/` = the wheel's Python backend + the stub for our Python."""
        backends = self.run_dir / "backends"
        if backends.exists():
            shutil.rmtree(backends)
        python_dir = backends / "python"
        shutil.copytree(
            dist.python_backend, python_dir, ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copy2(dist.stub, python_dir / dist.stub.name)
        return backends

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise LocalTritonError(
                    f"tritonserver exited with {self._proc.returncode}:\n{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or models still loading (400)
            time.sleep(0.2)
        raise LocalTritonError(
            f"tritonserver not ready after {self.startup_timeout_s:.0f} s:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
