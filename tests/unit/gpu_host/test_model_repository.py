"""Model specs → Triton model repository, for both targets."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from gpu_host.models.repository import (
    Target,
    model_config,
    render_config,
    select_specs,
    write_repository,
)
from gpu_host.models.spec import (
    BUILTIN_SPECS,
    DType,
    DynamicBatching,
    ModelSpec,
    TensorSpec,
    load_processor,
    user_spec,
)
from gpu_host.models.tensorrt import TensorRt
from gpu_host.models.user_models import UserModel

ALL_SPECS = list(BUILTIN_SPECS.values())
USER_SPECS = [
    user_spec(
        UserModel(name=f"my-{layout}", file="m.onnx", layout=layout, input_size=320), Path("/m")
    )
    for layout in ("yolov8-detect", "yolov8-pose")
]
"""A user's own models (see test_user_models.py), which must generate configs as well."""
SERVABLE = ALL_SPECS + USER_SPECS


def parse(text: str) -> mc.ModelConfig:
    """Parse config.pbtxt with Triton's own schema: a typo'd field would fail here."""
    return text_format.Parse(text, mc.ModelConfig())


def test_every_zoo_model_is_specced() -> None:
    assert list(BUILTIN_SPECS) == ["detect", "pose", "face", "text", "ocr", "segment"]


@pytest.mark.parametrize("target", list(Target))
@pytest.mark.parametrize("spec", SERVABLE, ids=lambda s: s.name)
def test_generated_config_agrees_with_the_spec(spec: ModelSpec, target: Target) -> None:
    config = parse(render_config(model_config(spec, target)))
    assert config.name == spec.name
    assert config.max_batch_size == spec.max_batch_size
    for got, want in [(config.input, spec.inputs), (config.output, spec.outputs)]:
        assert [(t.name, mc.DataType.Name(t.data_type), tuple(t.dims)) for t in got] == [
            (t.name, t.dtype.config_name, t.dims) for t in want
        ]
    if spec.batching is None:
        assert not config.HasField("dynamic_batching")
    else:
        assert tuple(config.dynamic_batching.preferred_batch_size) == (
            spec.batching.preferred_batch_sizes
        )
        assert config.dynamic_batching.max_queue_delay_microseconds == (
            spec.batching.max_queue_delay_us
        )


@pytest.mark.parametrize("spec", SERVABLE, ids=lambda s: s.name)
def test_local_target_is_python_backend_on_cpu(spec: ModelSpec) -> None:
    config = parse(render_config(model_config(spec, Target.LOCAL, cpu_threads=3)))
    assert config.backend == "python"
    assert config.platform == ""
    assert [(g.kind, g.count) for g in config.instance_group] == [
        (mc.ModelInstanceGroup.KIND_CPU, 1)
    ]
    assert config.parameters["intra_op_threads"].string_value == "3"


@pytest.mark.parametrize("tensorrt", [False, True])
@pytest.mark.parametrize("spec", SERVABLE, ids=lambda s: s.name)
def test_gpu_target_is_onnxruntime_on_gpu(spec: ModelSpec, tensorrt: bool) -> None:
    options = TensorRt(PurePosixPath("/cache"), "nvidia-a10g-sm86") if tensorrt else None
    config = parse(render_config(model_config(spec, Target.GPU, tensorrt=options)))
    assert config.platform == "onnxruntime_onnx"
    assert config.backend == ""
    assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.KIND_GPU]
    accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in accelerators] == (["tensorrt"] if tensorrt else [])
    for warmup in config.model_warmup:
        assert set(warmup.inputs) == {t.name for t in spec.inputs}
        assert all(warmup.inputs[t.name].zero_data for t in spec.inputs)


def test_write_repository_layout(tmp_path: Path) -> None:
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    spec = BUILTIN_SPECS["text"]
    (zoo / spec.onnx_file).write_bytes(b"onnx bytes")
    out = tmp_path / "repo"
    (out / "text" / "2").mkdir(parents=True)  # a stale version must not survive
    write_repository(out, Target.LOCAL, [spec], zoo_dir=zoo)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "text/1/model.onnx",
        "text/1/model.py",
        "text/config.pbtxt",
    ]
    assert (out / "text/1/model.onnx").read_bytes() == b"onnx bytes"
    ast.parse((out / "text/1/model.py").read_text())  # the template is valid Python
    assert parse((out / "text/config.pbtxt").read_text()).backend == "python"

    write_repository(out, Target.GPU, [spec], zoo_dir=zoo)
    assert not (out / "text/1/model.py").exists(), "the GPU target has no Python model"


def test_write_repository_names_the_missing_onnx_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"text_det\.onnx is missing"):
        write_repository(tmp_path / "repo", Target.GPU, [BUILTIN_SPECS["text"]], zoo_dir=tmp_path)


def test_select_specs() -> None:
    assert select_specs(None, BUILTIN_SPECS) == ALL_SPECS
    assert select_specs(["text", "text"], BUILTIN_SPECS) == [BUILTIN_SPECS["text"]]
    with pytest.raises(ValueError, match=r"unknown models \['nope'\]"):
        select_specs(["text", "nope"], BUILTIN_SPECS)
    mine = {s.name: s for s in USER_SPECS}
    assert select_specs(["my-yolov8-pose"], mine) == [USER_SPECS[1]]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_the_zoo_holds_every_specs_model(spec: ModelSpec) -> None:
    assert spec.onnx_path.is_file(), f"{spec.onnx_path} is missing"


@pytest.mark.parametrize("spec", SERVABLE, ids=lambda s: s.name)
def test_processor_speaks_the_specs_tensors(spec: ModelSpec) -> None:
    """The processor's preprocess output is exactly the spec's inputs, and its postprocess
    accepts outputs shaped as the spec says."""
    processor = load_processor(spec)
    assert processor.model == spec.name
    tensors, letterbox = processor.preprocess(np.zeros((480, 640, 3), np.uint8))
    assert {n: (a.dtype.name, a.shape) for n, a in tensors.items()} == {
        t.name: (t.dtype.numpy_name, t.dims) for t in spec.inputs
    }
    outputs = {t.name: np.zeros(t.dims, t.dtype.numpy_name) for t in spec.outputs}
    processor.postprocess(outputs, letterbox)


def spec_with(**changes: object) -> ModelSpec:
    fields = {
        "name": "m",
        "onnx_file": "m.onnx",
        "inputs": (TensorSpec("image", DType.UINT8, (8, 8, 3)),),
        "outputs": (TensorSpec("out", DType.FP32, (4,)),),
        "max_batch_size": 4,
        "batching": DynamicBatching((2, 4), 100),
        "processor": "pkg.mod:factory",
    }
    fields.update(changes)
    return ModelSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size must be >= 1"),
        ({"batching": DynamicBatching((8,), 100)}, r"preferred batch sizes \[8\]"),
        ({"outputs": (TensorSpec("image", DType.FP32, (4,)),)}, "tensor names must be unique"),
        ({"processor": "pkg.mod.factory"}, "module:factory"),
        ({"regions_from": "m"}, "regions_from cannot name the model itself"),
    ],
)
def test_spec_rejects_inconsistent_definitions(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec_with(**changes)


@pytest.mark.parametrize(
    ("name", "dims"), [("a:0", (1,)), ("a/b", (1,)), ("", (1,)), ("x", ()), ("x", (3, -1))]
)
def test_tensor_spec_rejects_what_triton_cannot_serve(name: str, dims: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="tensor"):
        TensorSpec(name, DType.FP32, dims)


def test_load_processor_checks_the_model_name() -> None:
    wrong = spec_with(name="other", processor="gpu_host.vision.text:TextProcessor")
    with pytest.raises(ValueError, match="says model 'text'"):
        load_processor(wrong)


def test_cli_writes_a_gpu_repository(tmp_path: Path) -> None:
    out = tmp_path / "repo"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gpu_host.models.repository",
            "--target",
            "gpu",
            *("--gpu", "NVIDIA A10G, 8.6", "--engine-cache", str(tmp_path / "engines")),
            "--out",
            str(out),
            "--models",
            "text",
            "--user-models",
            str(tmp_path / "none" / "user_models.json"),
        ],
        check=True,
        capture_output=True,
    )
    config = parse((out / "text" / "config.pbtxt").read_text())
    assert config.platform == "onnxruntime_onnx"
    assert (out / "text" / "1" / "model.onnx").stat().st_size > 1_000_000


def test_cli_names_an_unknown_model(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "gpu_host.models.repository", "--target", "local"),
            *("--out", str(tmp_path), "--models", "nope"),
            *("--user-models", str(tmp_path / "none" / "user_models.json")),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "unknown models ['nope']" in done.stderr
