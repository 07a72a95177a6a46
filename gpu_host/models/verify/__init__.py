"""Verify a running Triton against the ONNX reference, and decide each model's precision.

    python -m gpu_host.models.verify --target gpu|local --url HOST:PORT [--models ...]
        [--decide decided.json]

Sends the sample images (`samples/`) through Triton's gRPC endpoint, runs the same inputs
through the committed ONNX file on ONNX Runtime's CPU provider, and compares every output
with the tolerance `compare.TOLERANCES` states for it. Exits 1 naming each failing model and
output. `--decide` writes what `decide_precisions` makes of it: the file that
`python -m gpu_host.models.repository --precisions` reads to rebuild a model off in FP16 in
FP32.
"""

from gpu_host.models.verify.compare import (
    TOLERANCES,
    ModelReport,
    OutputCheck,
    Tolerance,
    failure_message,
    report_lines,
)
from gpu_host.models.verify.precision import PrecisionDecision, decide_precisions

__all__ = [
    "TOLERANCES",
    "ModelReport",
    "OutputCheck",
    "PrecisionDecision",
    "Tolerance",
    "decide_precisions",
    "failure_message",
    "report_lines",
]
