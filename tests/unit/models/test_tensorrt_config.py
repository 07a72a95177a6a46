"""The `gpu` repository's TensorRT configuration, read back from the generated config.pbtxt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from gpu_host.models.repository import Target, model_config, render_config, write_repository
from gpu_host.models.spec import BUILTIN_SPECS, ModelSpec, Precision
from gpu_host.models.tensorrt import (
    GpuKeyError,
    TensorRt,
    gpu_key,
    gpu_key_from_nvidia_smi,
    served_precision,
)

CACHE = PurePosixPath("/var/lib/spinup/trt-engines")
A10G = "nvidia-a10g-sm86"


def gpu_config(spec: ModelSpec, trt: TensorRt) -> mc.ModelConfig:
    """Rendered and parsed with Triton's own schema: a typo'd field would fail here."""
    return text_format.Parse(
        render_config(model_config(spec, Target.GPU, tensorrt=trt)), mc.ModelConfig()
    )


def trt_parameters(config: mc.ModelConfig) -> dict[str, str]:
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    return dict(accelerator.parameters)


@pytest.mark.parametrize(
    ("model", "precision"),
    [
        ("detect", "FP16"),
        ("face", "FP16"),
        ("ocr", "FP16"),
        ("pose", "FP32"),
        ("text", "FP32"),
        ("segment", "FP32"),
    ],
)
def test_default_precision_per_model(model: str, precision: str) -> None:
    """FP16 where it was measured to hold; FP32 for the text detector (off by up to 1.0 in
    FP16), for pose (holds only under autocast, which TensorRT's FP16 mode is not) and for
    segment (not measured on a GPU yet)."""
    params = trt_parameters(gpu_config(BUILTIN_SPECS[model], TensorRt(CACHE, A10G)))
    assert params["precision_mode"] == precision
    assert served_precision(params) is Precision(precision)


def test_a_decision_overrides_the_spec_precision() -> None:
    trt = TensorRt(CACHE, A10G, precisions={"detect": Precision.FP32})
    assert trt_parameters(gpu_config(BUILTIN_SPECS["detect"], trt))["precision_mode"] == "FP32"
    assert trt_parameters(gpu_config(BUILTIN_SPECS["face"], trt))["precision_mode"] == "FP16"


@pytest.mark.parametrize("spec", list(BUILTIN_SPECS.values()), ids=lambda s: s.name)
def test_engine_cache_is_outside_the_repository_keyed_by_gpu_model_and_precision(
    spec: ModelSpec,
) -> None:
    params = trt_parameters(gpu_config(spec, TensorRt(CACHE, A10G)))
    precision = spec.gpu_precision.value.lower()
    want = f"/var/lib/spinup/trt-engines/nvidia-a10g-sm86/{spec.name}-{precision}"
    assert params["trt_engine_cache_enable"] == "1"
    assert params["trt_engine_cache_path"] == want
    assert params["trt_timing_cache_path"] == want


def test_another_gpu_or_precision_gets_another_cache() -> None:
    spec = BUILTIN_SPECS["detect"]
    paths = {
        trt_parameters(gpu_config(spec, trt))["trt_engine_cache_path"]
        for trt in (
            TensorRt(CACHE, A10G),
            TensorRt(CACHE, "tesla-t4-sm75"),
            TensorRt(CACHE, A10G, precisions={"detect": Precision.FP32}),
        )
    }
    assert len(paths) == 3


@pytest.mark.parametrize(
    ("model", "min_shapes", "max_shapes"),
    [
        ("detect", "image:1x416x416x3", "image:8x416x416x3"),
        ("text", "image:1x256x320x3", "image:8x256x320x3"),
        ("ocr", "image:1x48x320x3", "image:16x48x320x3"),
        ("segment", "image:1x256x256x3", "image:8x256x256x3"),
    ],
)
def test_one_profile_covers_batch_1_to_max_batch_size(
    model: str, min_shapes: str, max_shapes: str
) -> None:
    params = trt_parameters(gpu_config(BUILTIN_SPECS[model], TensorRt(CACHE, A10G)))
    assert params["trt_profile_min_shapes"] == min_shapes
    assert params["trt_profile_opt_shapes"] == max_shapes
    assert params["trt_profile_max_shapes"] == max_shapes


@pytest.mark.parametrize("spec", list(BUILTIN_SPECS.values()), ids=lambda s: s.name)
def test_warm_up_at_both_ends_of_the_profile(spec: ModelSpec) -> None:
    config = gpu_config(spec, TensorRt(CACHE, A10G))
    assert [w.batch_size for w in config.model_warmup] == [1, spec.max_batch_size]
    for warmup in config.model_warmup:
        (sample,) = warmup.inputs.values()
        assert tuple(sample.dims) == spec.inputs[0].dims
        assert sample.zero_data


def test_batch_1_model_warms_up_once() -> None:
    spec = BUILTIN_SPECS["face"]
    one = ModelSpec(
        name=spec.name,
        onnx_file=spec.onnx_file,
        inputs=spec.inputs,
        outputs=spec.outputs,
        max_batch_size=1,
        batching=None,
        processor=spec.processor,
    )
    assert [w.batch_size for w in gpu_config(one, TensorRt(CACHE, A10G)).model_warmup] == [1]


def test_without_tensorrt_the_gpu_target_has_no_accelerator() -> None:
    config = text_format.Parse(
        render_config(model_config(BUILTIN_SPECS["text"], Target.GPU)), mc.ModelConfig()
    )
    assert not config.optimization.execution_accelerators.gpu_execution_accelerator
    assert served_precision(None) is None


def test_local_target_is_unchanged_by_tensorrt_options() -> None:
    spec = BUILTIN_SPECS["text"]
    with_trt = model_config(spec, Target.LOCAL, tensorrt=TensorRt(CACHE, A10G))
    assert render_config(with_trt) == render_config(model_config(spec, Target.LOCAL))
    assert "tensorrt" not in render_config(with_trt)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("NVIDIA A10G, 8.6\n", "nvidia-a10g-sm86"),
        ("Tesla T4, 7.5", "tesla-t4-sm75"),
        ("NVIDIA L4, 8.9\nNVIDIA L4, 8.9\n", "nvidia-l4-sm89"),
        ("NVIDIA H200, 9.0", "nvidia-h200-sm90"),
    ],
)
def test_gpu_key_from_nvidia_smi(line: str, key: str) -> None:
    assert gpu_key_from_nvidia_smi(line) == key


@pytest.mark.parametrize("output", ["", "NVIDIA A10G", "NVIDIA A10G, [N/A]", ", 8.6"])
def test_gpu_key_refuses_what_it_cannot_read(output: str) -> None:
    with pytest.raises(GpuKeyError):
        gpu_key_from_nvidia_smi(output)


def test_gpu_key_is_a_plain_directory_name() -> None:
    assert gpu_key("NVIDIA RTX A6000 (48GB)", "8.6") == "nvidia-rtx-a6000-48gb-sm86"
    with pytest.raises(ValueError, match="plain name"):
        TensorRt(CACHE, "../etc")
    with pytest.raises(ValueError, match="absolute"):
        TensorRt(PurePosixPath("engines"), A10G)


def test_write_repository_creates_the_engine_caches(tmp_path: Path) -> None:
    cache = PurePosixPath(tmp_path / "engines")
    write_repository(
        tmp_path / "repo",
        Target.GPU,
        [BUILTIN_SPECS["face"], BUILTIN_SPECS["text"]],
        tensorrt=TensorRt(cache, A10G),
    )
    assert sorted(p.name for p in (tmp_path / "engines" / A10G).iterdir()) == [
        "face-fp16",
        "text-fp32",
    ]
    assert not any((tmp_path / "repo").rglob("*.engine"))


def test_cli_applies_a_decision_file(tmp_path: Path) -> None:
    decided = tmp_path / "decided.json"
    decided.write_text(json.dumps({"precisions": {"face": "FP32"}}))
    out = tmp_path / "repo"
    subprocess.run(
        [
            *(sys.executable, "-m", "gpu_host.models.repository", "--target", "gpu"),
            *("--out", str(out), "--models", "face", "--precisions", str(decided)),
            *("--gpu", "Tesla T4, 7.5", "--engine-cache", str(tmp_path / "engines")),
            *("--user-models", str(tmp_path / "none.json")),
        ],
        check=True,
        capture_output=True,
    )
    params = trt_parameters(
        text_format.Parse((out / "face" / "config.pbtxt").read_text(), mc.ModelConfig())
    )
    assert params["precision_mode"] == "FP32"
    assert params["trt_engine_cache_path"] == str(tmp_path / "engines/tesla-t4-sm75/face-fp32")
