"""Generate a Triton model repository from the model specs, for the GPU host or for local mode.

- `gpu`: Triton's ONNX Runtime backend on the GPU (`platform: "onnxruntime_onnx"`,
  `KIND_GPU`) with the TensorRT execution accelerator in each model's precision, engines
  cached per GPU outside the repository, one optimization profile from batch 1 to
  `max_batch_size` and a warm-up at both ends (`gpu_host.models.tensorrt`).
- `local`: Triton's Python backend running ONNX Runtime on the CPU (the `tritonserver` inside
  the nvidia-pytriton wheel ships only that backend). Same model names, tensors and batching,
  so the backend's client code cannot tell the two apart.

    python -m gpu_host.models.repository --target {local,gpu} --out DIR [--models text ...]
        [--user-models user_models.json]
        [--gpu "$(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader)"]
        [--engine-cache /var/lib/spinup/trt-engines] [--precisions decided.json] [--no-tensorrt]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from enum import StrEnum
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TypeVar

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from gpu_host.models.spec import (
    BUILTIN_SPECS,
    USER_MODELS_FILE,
    ZOO_DIR,
    ModelSpec,
    Precision,
    TensorSpec,
    model_catalog,
)
from gpu_host.models.tensorrt import (
    ACCELERATOR,
    DEFAULT_ENGINE_CACHE,
    TensorRt,
    gpu_key_from_nvidia_smi,
    warmup_batch_sizes,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T", mc.ModelInput, mc.ModelOutput)

VERSION = "1"
"""Triton loads the highest numbered version directory; we only ever ship one."""


class Target(StrEnum):
    LOCAL = "local"
    GPU = "gpu"


def model_config(
    spec: ModelSpec,
    target: Target,
    *,
    tensorrt: TensorRt | None = None,
    cpu_threads: int = 0,
) -> mc.ModelConfig:
    """The `config.pbtxt` message for one model on one target (`tensorrt`: gpu only; None
    runs the model on ONNX Runtime's CUDA provider alone)."""
    config = mc.ModelConfig(name=spec.name, max_batch_size=spec.max_batch_size)
    for tensor in spec.inputs:
        config.input.append(_tensor(tensor, mc.ModelInput))
    for tensor in spec.outputs:
        config.output.append(_tensor(tensor, mc.ModelOutput))
    if spec.batching is not None:
        config.dynamic_batching.preferred_batch_size.extend(spec.batching.preferred_batch_sizes)
        config.dynamic_batching.max_queue_delay_microseconds = spec.batching.max_queue_delay_us
    if target is Target.GPU:
        config.platform = "onnxruntime_onnx"
        config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_GPU)
        if tensorrt is not None:
            accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(
                name=ACCELERATOR
            )
            accelerator.parameters.update(tensorrt.parameters(spec))
        # Triton runs these before it reports the model ready, so a TensorRT engine build (or
        # CUDA's lazy init) happens while the host initializes, not on a user's first frame;
        # at both ends of the profile, so that the first full batch builds nothing either.
        for batch in warmup_batch_sizes(spec):
            warmup = config.model_warmup.add(name=f"zeros-batch-{batch}", batch_size=batch)
            for tensor in spec.inputs:
                sample = warmup.inputs[tensor.name]
                sample.data_type = mc.DataType.Value(tensor.dtype.config_name)
                sample.dims.extend(tensor.dims)
                sample.zero_data = True
    else:
        config.backend = "python"
        config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_CPU)
        config.parameters["intra_op_threads"].string_value = str(cpu_threads)
    return config


def render_config(config: mc.ModelConfig) -> str:
    return str(text_format.MessageToString(config))


def write_repository(
    out: Path,
    target: Target,
    specs: Iterable[ModelSpec],
    *,
    zoo_dir: Path = ZOO_DIR,
    tensorrt: TensorRt | None = None,
    cpu_threads: int = 0,
) -> list[Path]:
    """Write one model directory per spec under `out` (replacing those directories only).

    With `tensorrt`, each model's engine cache directory is created too: the generator runs
    on the host that serves the repository, where Triton sees the cache at the same path."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in specs:
        source = zoo_dir / spec.onnx_file
        if not source.is_file():
            raise FileNotFoundError(f"model {spec.name!r}: {source} is missing")
        model_dir = out / spec.name
        if model_dir.exists():
            shutil.rmtree(model_dir)
        version_dir = model_dir / VERSION
        version_dir.mkdir(parents=True)
        config = model_config(spec, target, tensorrt=tensorrt, cpu_threads=cpu_threads)
        (model_dir / "config.pbtxt").write_text(render_config(config))
        shutil.copyfile(source, version_dir / "model.onnx")
        if tensorrt is not None:
            Path(str(tensorrt.cache_dir(spec))).mkdir(parents=True, exist_ok=True)
        if target is Target.LOCAL:
            template = resources.files("gpu_host.models.templates") / "onnx_cpu_model.py"
            (version_dir / "model.py").write_text(template.read_text())
        written.append(model_dir)
        log.info("wrote %s (%s)", model_dir, target.value)
    return written


def select_specs(names: Iterable[str] | None, catalog: Mapping[str, ModelSpec]) -> list[ModelSpec]:
    """Specs from `catalog` by name (all when `names` is None); unknown names are an error,
    not a skip."""
    if names is None:
        return list(catalog.values())
    chosen = list(dict.fromkeys(names))
    unknown = [n for n in chosen if n not in catalog]
    if unknown:
        raise ValueError(f"unknown models {unknown}; known: {sorted(catalog)}")
    return [catalog[n] for n in chosen]


def _tensor(tensor: TensorSpec, kind: type[_T]) -> _T:
    return kind(
        name=tensor.name,
        data_type=mc.DataType.Value(tensor.dtype.config_name),
        dims=list(tensor.dims),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a Triton model repository from specs.")
    parser.add_argument("--target", type=Target, choices=list(Target), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--models",
        nargs="+",
        help=f"default: all ({', '.join(BUILTIN_SPECS)} and yours)",
    )
    parser.add_argument("--zoo", type=Path, default=ZOO_DIR, help="where the ONNX files are")
    parser.add_argument(
        "--user-models",
        type=Path,
        default=USER_MODELS_FILE,
        help="your own models' declarations (see docs/models.md)",
    )
    parser.add_argument(
        "--no-tensorrt", action="store_true", help="gpu: ONNX Runtime's CUDA provider alone"
    )
    parser.add_argument(
        "--gpu",
        help="gpu: 'name, compute capability' as `nvidia-smi --query-gpu=name,compute_cap "
        "--format=csv,noheader` prints it (default: ask nvidia-smi)",
    )
    parser.add_argument(
        "--engine-cache",
        type=PurePosixPath,
        default=DEFAULT_ENGINE_CACHE,
        help="gpu: writable directory for TensorRT engines, outside the repository",
    )
    parser.add_argument(
        "--precisions",
        type=Path,
        help="gpu: a verification's decision (python -m gpu_host.models.verify --decide)",
    )
    parser.add_argument("--cpu-threads", type=int, default=0, help="local: ORT intra-op threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tensorrt = None
    if args.target is Target.GPU and not args.no_tensorrt:
        tensorrt = TensorRt(
            engine_cache=args.engine_cache,
            gpu=gpu_key_from_nvidia_smi(args.gpu if args.gpu is not None else _nvidia_smi()),
            precisions=read_precisions(args.precisions) if args.precisions else {},
        )
    write_repository(
        args.out,
        args.target,
        select_specs(args.models, model_catalog(args.user_models)),
        zoo_dir=args.zoo,
        tensorrt=tensorrt,
        cpu_threads=args.cpu_threads,
    )


def read_precisions(path: Path) -> dict[str, Precision]:
    """The `precisions` of a decision file written by `gpu_host.models.verify --decide`."""
    decided = json.loads(path.read_text())
    return {name: Precision(value) for name, value in decided["precisions"].items()}


def _nvidia_smi() -> str:
    query = ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"]
    try:
        return subprocess.run(query, capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(f"--target gpu needs --gpu or a working nvidia-smi ({exc})") from exc


if __name__ == "__main__":
    main()
