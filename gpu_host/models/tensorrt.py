"""How the `gpu` repository asks Triton's ONNX Runtime backend for TensorRT, per model.

Pure: everything here maps a spec (and the GPU it will run on) to configuration values; the
repository generator writes them and `gpu_host.models.verify` reads them back.

Parameter names are the backend's, mapped onto the TensorRT execution provider's options
(https://github.com/triton-inference-server/onnxruntime_backend#onnx-runtime-with-tensorrt-optimization):
`precision_mode`, `max_workspace_size_bytes`, `trt_engine_cache_enable`,
`trt_engine_cache_path`, `trt_timing_cache_enable`, `trt_timing_cache_path`,
`trt_profile_min_shapes` / `trt_profile_opt_shapes` / `trt_profile_max_shapes`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from gpu_host.models.spec import ModelSpec, Precision

DEFAULT_ENGINE_CACHE = PurePosixPath("/var/lib/spinup/trt-engines")
"""Where engines are cached on the host's root volume: writable, outside the model
repository (which Triton mounts read-only) and outside any release directory, so a new
release of unchanged models reuses them."""

WORKSPACE_BYTES = 1 << 30
"""TensorRT's scratch memory while building and running (the backend's default, 1 GiB):
ample for these small convolutional models on a 16–24 GB T4/A10G/L4."""

ACCELERATOR = "tensorrt"


class GpuKeyError(ValueError):
    """The GPU could not be named (what `nvidia-smi` printed is not what we asked for)."""


def gpu_key(name: str, compute_capability: str) -> str:
    """A directory name for one kind of GPU: `nvidia-a10g-sm86` for ("NVIDIA A10G", "8.6").

    A TensorRT engine only runs on the GPU model it was built for; g4dn, g5 and g6 have T4,
    A10G and L4, so engines are cached per GPU and a volume moved between types never loads
    a foreign engine.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    match = re.fullmatch(r"(\d+)\.(\d+)", compute_capability.strip())
    if not slug or match is None:
        raise GpuKeyError(f"cannot name GPU {name!r}, compute capability {compute_capability!r}")
    return f"{slug}-sm{match[1]}{match[2]}"


def gpu_key_from_nvidia_smi(output: str) -> str:
    """The key of the first GPU in `nvidia-smi --query-gpu=name,compute_cap
    --format=csv,noheader` (one `name, major.minor` line per GPU; the hosts have one)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines or "," not in lines[0]:
        raise GpuKeyError(f"expected 'name, compute capability' from nvidia-smi, got {output!r}")
    name, _, capability = lines[0].rpartition(",")
    return gpu_key(name, capability)


def shape_list(spec: ModelSpec, batch: int) -> str:
    """`input:BxD1xD2…` for every input, comma-separated (the EP's profile syntax)."""
    return ",".join(f"{t.name}:" + "x".join(str(d) for d in (batch, *t.dims)) for t in spec.inputs)


@dataclass(frozen=True, slots=True)
class TensorRt:
    """TensorRT on the GPU host: where engines are cached, for which GPU, in which precision.

    `engine_cache` is the path as Triton sees it (the host mounts it at the same path).
    `precisions` overrides the specs' `gpu_precision` (the decision of a verification run).
    """

    engine_cache: PurePosixPath
    gpu: str
    precisions: Mapping[str, Precision] = field(default_factory=dict)
    workspace_bytes: int = WORKSPACE_BYTES

    def __post_init__(self) -> None:
        if not self.engine_cache.is_absolute():
            raise ValueError(f"engine cache {self.engine_cache} must be an absolute path")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.gpu):
            raise ValueError(f"GPU key {self.gpu!r} is not a plain name (see gpu_key)")

    def precision(self, spec: ModelSpec) -> Precision:
        return self.precisions.get(spec.name, spec.gpu_precision)

    def cache_dir(self, spec: ModelSpec) -> PurePosixPath:
        """One directory per GPU, model and precision: the EP names engine files after the
        graph, not after the precision, so an FP32 fallback must never find the FP16 engine."""
        precision = self.precision(spec).value.lower()
        return self.engine_cache / self.gpu / f"{spec.name}-{precision}"

    def parameters(self, spec: ModelSpec) -> dict[str, str]:
        """The accelerator's parameters in `config.pbtxt` for this model."""
        cache = str(self.cache_dir(spec))
        return {
            "precision_mode": self.precision(spec).value,
            "max_workspace_size_bytes": str(self.workspace_bytes),
            "trt_engine_cache_enable": "1",
            "trt_engine_cache_path": cache,
            # Kernel timings: a rebuild (new precision, new model version) tunes faster.
            "trt_timing_cache_enable": "1",
            "trt_timing_cache_path": cache,
            # ONE profile from batch 1 to max_batch_size: without it the EP builds an engine
            # for the first shape it sees and rebuilds whenever a larger batch arrives.
            # Optimized for full batches: that is where a GPU's time goes under load.
            "trt_profile_min_shapes": shape_list(spec, 1),
            "trt_profile_opt_shapes": shape_list(spec, spec.max_batch_size),
            "trt_profile_max_shapes": shape_list(spec, spec.max_batch_size),
        }


def served_precision(parameters: Mapping[str, str] | None) -> Precision | None:
    """The precision a served model's TensorRT accelerator builds in (None: no TensorRT)."""
    if parameters is None:
        return None
    return Precision(parameters.get("precision_mode", Precision.FP32.value))


def warmup_batch_sizes(spec: ModelSpec) -> tuple[int, ...]:
    """Both ends of the profile: Triton runs these before the model reports ready, so neither
    a start nor the first full batch builds an engine or initializes a context."""
    return tuple(dict.fromkeys((1, spec.max_batch_size)))
