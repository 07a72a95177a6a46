"""`python -m gpu_host.backend --host 127.0.0.1 --port 8080` (settings from `SPINUP_*`)."""

from __future__ import annotations

import argparse
import logging

from gpu_host.backend.server import serve
from gpu_host.backend.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description="Spinup WebSocket inference backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve(Settings(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
