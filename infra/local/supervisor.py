"""The emulated instance's processes: the real `tritonserver` on the CPU, then the backend.

On the GPU instance systemd starts these from `spinup.target`; here the host agent does,
with the same configuration passed the same way (environment variables for the backend).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Mapping

from gpu_host.triton.local import LocalTriton
from gpu_host.triton.processes import spawn, terminate
from infra.local.settings import LocalSettings

log = logging.getLogger(__name__)


class HostSupervisor:
    def __init__(self, *, settings: LocalSettings, backend_env: Mapping[str, str]) -> None:
        self._settings = settings
        self._backend_env = dict(backend_env)
        self._triton: LocalTriton | None = None
        self._backend: subprocess.Popen[bytes] | None = None

    @property
    def is_up(self) -> bool:
        return self._triton is not None

    def start(self) -> None:
        s = self._settings
        triton = LocalTriton(
            run_dir=s.run_dir / "triton",
            triton_venv=s.triton_venv,
            http_port=s.triton_http_port,
            grpc_port=s.triton_grpc_port,
            metrics_port=s.triton_metrics_port,
            models=s.served_models,
            user_models=s.user_models,
        )
        self._triton = triton
        triton.start()
        self._backend = spawn(
            [
                sys.executable,
                "-m",
                "gpu_host.backend",
                "--host",
                s.bind,
                "--port",
                str(s.backend_port),
            ],
            env=self._backend_env,
            log_path=s.run_dir / "logs" / "backend.log",
        )
        log.info("backend started (pid %d) on port %d", self._backend.pid, s.backend_port)

    def stop(self) -> None:
        # Backend first, as systemd orders it: it closes sockets with 1001 while Triton is up.
        if self._backend is not None:
            terminate(self._backend, name="backend")
            self._backend = None
        if self._triton is not None:
            self._triton.stop()
            self._triton = None
