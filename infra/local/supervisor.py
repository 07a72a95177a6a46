"""One emulated host's processes: the real `tritonserver` on the CPU, then the backend.

On a GPU host systemd starts these from `spinup.target`; here the host agent does, with the
same configuration passed the same way (environment variables for the backend), each host on
its own ports and in its own directory.

The processes die with the thread that started them (`gpu_host.triton.processes`): the
agent starts a stack from a thread that lives as long as the stack.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from gpu_host.backend.settings import DEFAULT_MODELS, startup_models
from gpu_host.models.spec import model_catalog
from gpu_host.triton.local import LocalTriton
from gpu_host.triton.processes import spawn, terminate
from infra.local.ports import HostPorts, SlotPorts
from infra.local.settings import LocalSettings

log = logging.getLogger(__name__)

READY_PROBE_TIMEOUT_S = 1.0


class HostSupervisor:
    """Thread-safe: the host's own thread starts it; the agent may stop it from another."""

    def __init__(
        self,
        *,
        settings: LocalSettings,
        ports: HostPorts,
        backend_env: Mapping[str, str],
        run_dir: Path,
    ) -> None:
        self._settings = settings
        self._ports = ports
        self._backend_env = dict(backend_env)
        self._run_dir = run_dir
        self._lock = threading.Lock()
        self._stopped = False
        self._triton: LocalTriton | None = None
        self._backend: subprocess.Popen[bytes] | None = None

    @property
    def ports(self) -> HostPorts:
        return self._ports

    @property
    def backend_env(self) -> Mapping[str, str]:
        return dict(self._backend_env)

    @property
    def run_dir(self) -> Path:
        return self._run_dir

    @property
    def ready_url(self) -> str:
        return f"http://{self._settings.bind}:{self._ports.backend}/health/ready"

    def start(self) -> None:
        """Triton (returns once it answers ready), then the backend; a stop meanwhile wins."""
        s = self._settings
        triton = LocalTriton(
            run_dir=self._run_dir / "triton",
            triton_venv=s.triton_venv,
            http_port=self._ports.triton_http,
            grpc_port=self._ports.triton_grpc,
            metrics_port=self._ports.triton_metrics,
            models=s.served_models,
            # Explicit model control: the backend's start-up models load at start, the
            # others when a session asks (docs/models.md, "Models loaded on demand").
            load_models=self.startup_models(),
            user_models=s.user_models,
        )
        if not self._adopt(triton):
            return
        triton.start()
        with self._lock:
            if self._stopped:
                # Stopped while Triton was being spawned: the stop may have come too early.
                triton.stop()
                return
            self._backend = spawn(
                [
                    sys.executable,
                    "-m",
                    "gpu_host.backend",
                    "--host",
                    s.bind,
                    "--port",
                    str(self._ports.backend),
                ],
                env=self._backend_env,
                log_path=self._run_dir / "logs" / "backend.log",
            )
            log.info("backend started (pid %d) on port %d", self._backend.pid, self._ports.backend)

    def startup_models(self) -> tuple[str, ...]:
        """What Triton loads at start: the backend's start-up models, from the settings the
        backend reads (`SPINUP_DEFAULT_MODELS`, else its default)."""
        defaults = self._backend_env.get("SPINUP_DEFAULT_MODELS")
        return startup_models(
            self._settings.served_models,
            DEFAULT_MODELS if defaults is None else tuple(defaults.split(",")),
            model_catalog(self._settings.user_models),
        )

    def _adopt(self, triton: LocalTriton) -> bool:
        with self._lock:
            if self._stopped:
                return False
            self._triton = triton
            return True

    def ready(self) -> bool:
        """The backend answers `/health/ready` with 200 (models loaded, warm-up done)."""
        try:
            with urllib.request.urlopen(self.ready_url, timeout=READY_PROBE_TIMEOUT_S) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False  # not listening yet, or 503 while it warms up

    def failure(self) -> str | None:
        """Why the stack cannot come up (its backend exited), or None."""
        with self._lock:
            backend = self._backend
        if backend is not None and backend.poll() is not None:
            return f"the backend exited with {backend.returncode} (see {self._run_dir}/logs)"
        return None

    def stop(self) -> None:
        """Backend first, as systemd orders it: it closes sockets with 1001 while Triton is
        up. Idempotent; stops a start in progress (Triton's wait for ready then fails)."""
        with self._lock:
            self._stopped = True
            backend, self._backend = self._backend, None
            triton, self._triton = self._triton, None
        if backend is not None:
            terminate(backend, name="backend")
        if triton is not None:
            triton.stop()


def backend_env(
    local: LocalSettings,
    *,
    base: Mapping[str, str],
    jwks_url: str,
    jwt_issuer: str,
    jwt_audience: str,
    table_name: str,
    aws_endpoint_url: str,
    ticket_secret: str,
) -> dict[str, str]:
    """What every host's backend reads, as on a GPU host (its id and ports come per host)."""
    return {
        **base,
        "SPINUP_JWKS_URL": jwks_url,
        "SPINUP_JWT_ISSUER": jwt_issuer,
        "SPINUP_JWT_AUDIENCE": jwt_audience,
        "SPINUP_ALLOWED_ORIGINS": local.ui_origin,
        "SPINUP_TABLE_NAME": table_name,
        "SPINUP_AWS_REGION": local.region,
        "SPINUP_AWS_ENDPOINT_URL": aws_endpoint_url,
        "SPINUP_MODELS": ",".join(local.served_models),
        "SPINUP_TICKET_SECRET": ticket_secret,
        # The engine hellos with tickets here too; token hellos stay accepted unless asked.
        "SPINUP_REQUIRE_TICKETS": "true" if local.require_tickets else "false",
        "SPINUP_USER_MODELS": str(local.user_models),
        "SPINUP_WORKERS": str(local.backend_workers),
    }


def host_stacks(
    local: LocalSettings, ports: SlotPorts, env: Mapping[str, str]
) -> Callable[[int, str], HostSupervisor]:
    """The host agent's factory: slot i's stack, for the instance running there, on the
    slot's ports and in the slot's directory, its backend knowing which host it is."""

    def make(slot: int, instance_id: str) -> HostSupervisor:
        host_ports = ports(slot)
        return HostSupervisor(
            settings=local,
            ports=host_ports,
            backend_env={
                **env,
                "SPINUP_HOST_ID": instance_id,
                "SPINUP_TRITON_URL": f"http://{local.bind}:{host_ports.triton_http}",
            },
            run_dir=local.run_dir / "hosts" / f"slot-{slot}",
        )

    return make
