"""One backend worker process, as the supervisor (`python -m gpu_host.backend`) starts it:
`python -m gpu_host.backend.worker --fd N --metrics-dir DIR …`.

It inherits the listening socket (file descriptor N) and serves it with its own app: its own
shared Triton client, the host store the workers share (`SPINUP_STATE_DIR`, set by the
supervisor) and Prometheus' multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, also set by the
supervisor: the library reads it at import). SIGTERM drains it: every session gets the
`shutdown` notice and a 1001 close (`BackendServer`), then it exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from uvicorn.config import STARTUP_FAILURE

from gpu_host.backend.app import create_app
from gpu_host.backend.metrics import MULTIPROC_ENV
from gpu_host.backend.server import BackendServer, server_config
from gpu_host.backend.settings import Settings
from gpu_host.backend.supervisor import LOG_FORMAT

log = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description="One worker of the Spinup backend")
    parser.add_argument("--fd", type=int, required=True, help="the inherited listening socket")
    parser.add_argument("--metrics-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="where the socket listens (logs)")
    parser.add_argument("--port", type=int, default=8080, help="where the socket listens (logs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if os.environ.get(MULTIPROC_ENV) != str(args.metrics_dir):
        # prometheus_client chose its value class at import from this variable: without it
        # this worker's metrics would be missing from every scrape.
        log.error("%s must be %s (the supervisor sets it)", MULTIPROC_ENV, args.metrics_dir)
        sys.exit(STARTUP_FAILURE)
    try:
        settings = Settings()
        app = create_app(settings, metrics_dir=args.metrics_dir, report_on_signal=True)
    except Exception:
        log.exception("worker failed to start")
        sys.exit(STARTUP_FAILURE)  # the supervisor stops: every worker would fail alike
    listener = socket.socket(fileno=args.fd)  # family and type read from the descriptor
    config = server_config(app, settings, host=args.host, port=args.port)
    # The lifespan failing exits with STARTUP_FAILURE too (uvicorn's own).
    BackendServer(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
