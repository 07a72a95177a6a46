"""Running a processor against a committed zoo model with ONNX Runtime, as the backend would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from gpu_host.vision.types import Image, ModelOutput, Processor

ZOO = Path(__file__).resolve().parents[3] / "gpu_host" / "models" / "zoo"

Arrays = dict[str, npt.NDArray[Any]]
Photo = Callable[[str], Image]
Run = Callable[[Processor, Image], ModelOutput]


class Zoo:
    """ONNX Runtime sessions on the committed models, each opened once."""

    def __init__(self) -> None:
        self._sessions: dict[str, ort.InferenceSession] = {}

    def session(self, name: str) -> ort.InferenceSession:
        if name not in self._sessions:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1  # the machine's cores are shared with other tests
            opts.log_severity_level = 3
            path = str(ZOO / f"{name}.onnx")
            self._sessions[name] = ort.InferenceSession(path, opts, ["CPUExecutionProvider"])
        return self._sessions[name]

    def infer(self, name: str, batch: Arrays) -> list[Arrays]:
        """Run a batch; each item's outputs by name, without the batch dimension."""
        session = self.session(name)
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(names, batch)
        count = len(next(iter(batch.values())))
        return [{n: o[i] for n, o in zip(names, outputs, strict=True)} for i in range(count)]

    def run(self, processor: Processor, image: Image) -> ModelOutput:
        """preprocess → ONNX Runtime (batch of one) → postprocess."""
        tensors, letterbox = processor.preprocess(image)
        (outputs,) = self.infer(processor.model, {k: v[None] for k, v in tensors.items()})
        return processor.postprocess(outputs, letterbox)


def single(tensors: Arrays) -> Arrays:
    """One item's tensors as a batch of one."""
    return {name: np.asarray(value)[None] for name, value in tensors.items()}
