"""The committed model zoo matches its manifest: checksums, files, tensor names and shapes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
import pytest

ZOO = Path(__file__).resolve().parents[3] / "gpu_host" / "models" / "zoo"
MANIFEST: dict[str, Any] = json.loads((ZOO / "MANIFEST.json").read_text())
MODELS: dict[str, dict[str, Any]] = MANIFEST["models"]
DTYPES = {onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.FLOAT: "float32"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def io_of(values: Any, initializers: set[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": v.name,
            "dtype": DTYPES.get(v.type.tensor_type.elem_type, str(v.type.tensor_type.elem_type)),
            "shape": [
                d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim
            ],
        }
        for v in values
        if v.name not in initializers
    ]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_file_matches_its_checksum(name: str) -> None:
    entry = MODELS[name]
    path = ZOO / entry["file"]
    assert path.stat().st_size == entry["bytes"]
    assert sha256(path) == entry["sha256"]


@pytest.mark.parametrize("relative", sorted(MANIFEST["files"]))
def test_other_files_match_their_checksums(relative: str) -> None:
    assert sha256(ZOO / relative) == MANIFEST["files"][relative]


def test_every_zoo_file_is_in_the_manifest() -> None:
    listed = {m["file"] for m in MODELS.values()} | set(MANIFEST["files"]) | {"MANIFEST.json"}
    present = {p.relative_to(ZOO).as_posix() for p in ZOO.rglob("*") if p.is_file()}
    assert present == listed


@pytest.mark.parametrize("name", sorted(MODELS))
def test_tensor_names_shapes_and_dtypes_match_the_graph(name: str) -> None:
    entry = MODELS[name]
    graph = onnx.load(str(ZOO / entry["file"]), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    assert io_of(graph.input, initializers) == entry["inputs"]
    assert io_of(graph.output, set()) == entry["outputs"]
    assert entry["dynamic_batch"] == all(t["shape"][0] == -1 for t in entry["inputs"])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_tensor_names_are_plain(name: str) -> None:
    """Triton refuses ':' and '/' in tensor names."""
    for tensor in MODELS[name]["inputs"] + MODELS[name]["outputs"]:
        assert not set(tensor["name"]) & {":", "/", " "}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_names_its_source_and_licence(name: str) -> None:
    entry = MODELS[name]
    source = entry["source"]
    assert source["registry"] in {"pypi", "npm"}
    assert source["package"]
    assert source["version"]
    assert source["member"]
    assert entry["license"] == "Apache-2.0"
    notice = (ZOO / "LICENSES" / "NOTICE.md").read_text()
    assert f"## {entry['file']}" in notice
    assert (
        (ZOO / "LICENSES" / "Apache-2.0.txt")
        .read_text()
        .startswith("                                 Apache License")
    )
