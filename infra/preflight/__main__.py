"""`python -m infra.preflight --region R`: one PASS/FAIL line per check; exit 1 on a failure.

The deploy config is read the way `infra/app.py` reads it: `cdk.json`'s context (plus
`-c key=value` overrides), the checkout's own models.
"""

from __future__ import annotations

import argparse
import json
import sys

import boto3

from gpu_host.models.spec import USER_MODELS_FILE
from infra.config import ConfigError, config_from_context
from infra.paths import REPO_ROOT
from infra.preflight.checks import run_checks
from infra.preflight.gather import gather


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.preflight")
    parser.add_argument("--region", required=True)
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    context = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    context.update(dict(item.split("=", 1) for item in args.context))
    try:
        config = config_from_context(context, user_models=USER_MODELS_FILE)
    except ConfigError as error:
        sys.stderr.write(f"FAIL config: {error}\n")
        return 2
    results = run_checks(config, gather(config, args.region, boto3.Session()))
    sys.stdout.write("".join(result.line() + "\n" for result in results))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
