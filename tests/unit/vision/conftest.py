"""Shared fixtures: the committed zoo through ONNX Runtime, and the test photographs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_host.vision.types import Image
from tests.unit.vision.harness import ZOO, Photo, Run, Zoo
from tests.unit.vision.photos import load


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    return ZOO


@pytest.fixture(scope="session")
def zoo() -> Zoo:
    return Zoo()


@pytest.fixture(scope="session")
def photo() -> Photo:
    """Loads a photo once per test session."""
    cache: dict[str, Image] = {}

    def get(name: str) -> Image:
        if name not in cache:
            cache[name] = load(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def run(zoo: Zoo) -> Run:
    """Processor + its committed model on one frame."""
    return zoo.run
