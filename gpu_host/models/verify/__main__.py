"""`python -m gpu_host.models.verify`: see the package docstring."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from gpu_host.models.repository import Target, select_specs
from gpu_host.models.spec import USER_MODELS_FILE, ZOO_DIR, model_catalog
from gpu_host.models.verify.compare import ModelReport, report_lines
from gpu_host.models.verify.precision import decide_precisions
from gpu_host.models.verify.run import verify_model
from gpu_host.models.verify.samples import SAMPLES_DIR, load_samples

log = logging.getLogger("gpu_host.models.verify")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gpu_host.models.verify",
        description="Compare a running Triton's outputs with the ONNX reference on the CPU.",
    )
    parser.add_argument("--target", type=Target, choices=list(Target), required=True)
    parser.add_argument("--url", required=True, help="Triton's gRPC endpoint, HOST:PORT")
    parser.add_argument("--models", nargs="+", help="default: every model this host can serve")
    parser.add_argument("--zoo", type=Path, default=ZOO_DIR, help="the reference ONNX files")
    parser.add_argument("--user-models", type=Path, default=USER_MODELS_FILE)
    parser.add_argument("--samples", type=Path, default=SAMPLES_DIR)
    parser.add_argument(
        "--decide",
        type=Path,
        help="write each model's precision as decided from the results (JSON)",
    )
    return parser.parse_args(argv)


def verify(args: argparse.Namespace) -> list[ModelReport]:
    specs = select_specs(args.models, model_catalog(args.user_models))
    images = list(load_samples(args.samples).values())
    client = grpcclient.InferenceServerClient(url=args.url)
    try:
        client.is_server_live()
    except InferenceServerException as exc:
        raise SystemExit(f"verification FAILED: no Triton at {args.url}: {exc.message()}") from exc
    return [verify_model(client, s, args.zoo / s.onnx_file, images, args.target) for s in specs]


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = parse_args(argv)
    reports = verify(args)
    sys.stdout.write("\n".join(report_lines(reports)) + "\n")
    if args.decide is not None:
        decision = decide_precisions(reports)
        args.decide.write_text(json.dumps(decision.to_json(), indent=2) + "\n")
        log.info("decision: %s", decision.to_json())
    return 0 if all(r.passed for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
