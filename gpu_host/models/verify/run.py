"""The side effects of a verification: ask Triton (gRPC, as the backend does) and run the
ONNX reference on ONNX Runtime's CPU provider, on the same batches."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import tritonclient.grpc as grpcclient
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.utils import InferenceServerException

from gpu_host.models.repository import Target
from gpu_host.models.spec import ModelSpec
from gpu_host.models.tensorrt import ACCELERATOR, served_precision
from gpu_host.models.verify.compare import ModelReport, Outputs, compare_output
from gpu_host.models.verify.samples import Batch, model_batches
from gpu_host.vision.types import Image

log = logging.getLogger(__name__)

TIMEOUT_S = 300.0
"""Per request: a full batch of `ocr` on a busy CPU takes seconds, and on the GPU a request
that still builds an engine (a warm-up that did not cover it) takes minutes."""


def reference_outputs(onnx_file: Path, spec: ModelSpec, batches: list[Batch]) -> list[Outputs]:
    """Per batch, the spec's outputs from ONNX Runtime on the CPU."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    names = [t.name for t in spec.outputs]
    return [dict(zip(names, session.run(names, batch), strict=True)) for batch in batches]


def served_outputs(
    client: grpcclient.InferenceServerClient, spec: ModelSpec, batches: list[Batch]
) -> list[Outputs]:
    results: list[Outputs] = []
    for batch in batches:
        inputs = []
        for tensor in spec.inputs:
            data = np.ascontiguousarray(batch[tensor.name])
            item = grpcclient.InferInput(tensor.name, list(data.shape), tensor.dtype.value)
            item.set_data_from_numpy(data)
            inputs.append(item)
        outputs = [grpcclient.InferRequestedOutput(t.name) for t in spec.outputs]
        reply = client.infer(spec.name, inputs, outputs=outputs, client_timeout=TIMEOUT_S)
        results.append({t.name: reply.as_numpy(t.name) for t in spec.outputs})
    return results


def check_target(config: mc.ModelConfig, target: Target) -> str | None:
    """Why the served model is not of `target` (a local Triton verified as `gpu`), or None."""
    on_gpu = config.platform == "onnxruntime_onnx" or config.backend == "onnxruntime"
    if (target is Target.GPU) != on_gpu:
        served = config.platform or config.backend
        return f"served by {served!r}, not the {target.value} target's backend"
    return None


def tensorrt_parameters(config: mc.ModelConfig) -> dict[str, str] | None:
    for accelerator in config.optimization.execution_accelerators.gpu_execution_accelerator:
        if accelerator.name == ACCELERATOR:
            return dict(accelerator.parameters)
    return None


def verify_model(
    client: grpcclient.InferenceServerClient,
    spec: ModelSpec,
    onnx_file: Path,
    images: Sequence[Image],
    target: Target,
) -> ModelReport:
    """Compare every output of one served model with the ONNX reference."""
    try:
        if not client.is_model_ready(spec.name):
            return ModelReport(spec.name, None, error="not ready on this Triton")
        config = client.get_model_config(spec.name).config
    except InferenceServerException as exc:
        return ModelReport(spec.name, None, error=f"Triton: {exc.message()}")
    precision = served_precision(tensorrt_parameters(config))
    mismatch = check_target(config, target)
    if mismatch is not None:
        return ModelReport(spec.name, precision, error=mismatch)
    batches = model_batches(spec, list(images))
    try:
        served = served_outputs(client, spec, batches)
    except InferenceServerException as exc:
        return ModelReport(spec.name, precision, error=f"inference failed: {exc.message()}")
    reference = reference_outputs(onnx_file, spec, batches)
    checks = [
        check
        for tensor in spec.outputs
        for check in compare_output(spec.name, tensor.name, served, reference)
    ]
    log.info("%s: compared %d outputs on %d batches", spec.name, len(spec.outputs), len(batches))
    return ModelReport(spec.name, precision, tuple(checks))
