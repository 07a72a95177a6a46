"""`python -m infra.local` (what `make demo` runs): the whole system on this machine."""

from __future__ import annotations

import logging

from infra.local.settings import LocalSettings
from infra.local.system import run


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    # moto and botocore are chatty at INFO; their news is in our own log lines.
    for noisy in ("botocore", "werkzeug", "moto", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    run(LocalSettings())


if __name__ == "__main__":
    main()
