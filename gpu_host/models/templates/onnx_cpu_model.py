"""Triton Python-backend model running ONNX Runtime on the CPU (the `local` target's `model.py`).

Copied next to `model.onnx` by `gpu_host.models.repository`; it runs inside tritonserver's
Python stub (the Triton venv: NumPy 1.x, onnxruntime), never in the app's interpreter. Tensor
names come from `config.pbtxt`, so the same file serves every model.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

INTRA_OP_THREADS = "intra_op_threads"
"""Optional `config.pbtxt` parameter; 0 lets ONNX Runtime use every core."""


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get(INTRA_OP_THREADS, "0"))
        model_file = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        self.session = ort.InferenceSession(
            str(model_file), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def execute(self, requests: list[Any]) -> list[Any]:
        # The dynamic batcher hands over several requests at once: run them as ONE batch, as
        # the ONNX Runtime backend does on the GPU, then split the rows back per request.
        try:
            feeds = {
                name: [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for r in requests]
                for name in self.inputs
            }
            sizes = [a.shape[0] for a in feeds[self.inputs[0]]]
            batch = {name: np.concatenate(parts) for name, parts in feeds.items()}
            results = self.session.run(self.outputs, batch)
        except Exception as exc:  # every request must get an answer, even a failing one
            error = pb_utils.TritonError(f"onnxruntime failed: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        bounds = np.cumsum([0, *sizes])
        return [
            pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor(name, np.ascontiguousarray(result[lo:hi]))
                    for name, result in zip(self.outputs, results, strict=True)
                ]
            )
            for lo, hi in itertools.pairwise(bounds)
        ]
