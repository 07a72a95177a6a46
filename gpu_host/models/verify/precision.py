"""What initialize builds each model in, decided from a verification run. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gpu_host.models.spec import Precision
from gpu_host.models.verify.compare import ModelReport


@dataclass(frozen=True, slots=True)
class PrecisionDecision:
    precisions: dict[str, Precision]
    """Every verified model served with TensorRT → the precision to build it in."""
    fell_back: tuple[str, ...]
    """Off in FP16: rebuild in FP32 and verify again."""
    failing: tuple[str, ...]
    """Off with no lower rung left (FP32, or no TensorRT), or not comparable at all."""

    @property
    def settled(self) -> bool:
        """Nothing to rebuild and nothing failing: the engines built are the ones to keep."""
        return not self.fell_back and not self.failing

    def to_json(self) -> dict[str, Any]:
        return {
            "precisions": {name: p.value for name, p in sorted(self.precisions.items())},
            "fell_back": list(self.fell_back),
            "failing": list(self.failing),
        }


def decide_precisions(reports: Iterable[ModelReport]) -> PrecisionDecision:
    """A model that passes keeps its precision; one off in FP16 (or failing there) falls back
    to FP32; one off in FP32 (or without TensorRT) has nowhere to go and is failing —
    initialize goes on with the others and reports it."""
    precisions: dict[str, Precision] = {}
    fell_back: list[str] = []
    failing: list[str] = []
    for report in reports:
        if report.passed:
            if report.precision is not None:
                precisions[report.model] = report.precision
        elif report.precision is Precision.FP16:
            precisions[report.model] = Precision.FP32
            fell_back.append(report.model)
        else:
            if report.precision is not None:
                precisions[report.model] = report.precision
            failing.append(report.model)
    return PrecisionDecision(precisions, tuple(fell_back), tuple(failing))
