"""`python -m gpu_host.backend --host 127.0.0.1 --port 8080` (settings from `SPINUP_*`): the
supervisor and its `SPINUP_WORKERS` worker processes on that port (`supervisor`)."""

from __future__ import annotations

import argparse
import logging
import sys

from gpu_host.backend.settings import Settings
from gpu_host.backend.supervisor import LOG_FORMAT, supervise


def main() -> None:
    parser = argparse.ArgumentParser(description="Spinup WebSocket inference backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    sys.exit(supervise(Settings(), host=args.host, port=args.port))


if __name__ == "__main__":
    main()
