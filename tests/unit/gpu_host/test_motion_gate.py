"""The motion gate's decision (pure): a first frame is inferred, an unchanged one (noise
only) reused, a moved one inferred; the threshold is strict; each session has its own
reference."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_host.backend.motion import (
    DEFAULT_THRESHOLD,
    THUMBNAIL_WH,
    MotionMemory,
    frame_difference,
    gate_decision,
    thumbnail,
)
from gpu_host.vision.types import Detection, ModelOutput
from tests.unit.gpu_host.motion_support import HEIGHT, WIDTH, view

SIZE = (WIDTH, HEIGHT)
MODELS = ("detect",)
OUTPUTS = (ModelOutput(detections=(Detection("detect", "person", 0.9, (0.1, 0.1, 0.4, 0.9)),)),)


def memory_of(shift_px: int = 0, noise_seed: int = 0) -> MotionMemory:
    memory = MotionMemory()
    memory.remember(
        thumbnail(view(shift_px, noise_seed=noise_seed)), size=SIZE, models=MODELS, outputs=OUTPUTS
    )
    return memory


def reuses(
    memory: MotionMemory,
    shift_px: int,
    *,
    noise_seed: int = 1,
    threshold: float = DEFAULT_THRESHOLD,
    size: tuple[int, int] = SIZE,
    models: tuple[str, ...] = MODELS,
) -> bool:
    current = thumbnail(view(shift_px, noise_seed=noise_seed))
    return gate_decision(memory.reference, current, size=size, models=models, threshold=threshold)


def test_the_thumbnail_is_small_grayscale() -> None:
    small = thumbnail(view())
    assert small.shape == (THUMBNAIL_WH[1], THUMBNAIL_WH[0])
    assert small.dtype == np.float32


def test_the_first_frame_is_always_inferred() -> None:
    current = thumbnail(view())
    assert not gate_decision(None, current, size=SIZE, models=MODELS, threshold=255.0)


@pytest.mark.parametrize("noise_seed", [1, 2, 3])
def test_the_same_view_with_fresh_noise_is_reused(noise_seed: int) -> None:
    assert reuses(memory_of(), 0, noise_seed=noise_seed)


@pytest.mark.parametrize("shift_px", [8, 32, 160])
def test_a_moved_view_is_inferred(shift_px: int) -> None:
    assert not reuses(memory_of(), shift_px)


@pytest.mark.parametrize(
    ("nudge", "reused"),
    [(-1e-3, False), (0.0, False), (1e-3, True)],
    ids=["threshold below the difference", "at it", "just above it"],
)
def test_the_threshold_is_strict(nudge: float, reused: bool) -> None:
    memory = memory_of()
    assert memory.reference is not None
    current = thumbnail(view(4, noise_seed=1))
    difference = frame_difference(memory.reference.thumbnail, current)
    assert difference > 0
    decided = gate_decision(
        memory.reference, current, size=SIZE, models=MODELS, threshold=difference + nudge
    )
    assert decided is reused


def test_a_zero_threshold_never_reuses_even_an_identical_frame() -> None:
    memory = memory_of(noise_seed=1)
    assert reuses(memory, 0, noise_seed=1, threshold=1e-6)
    assert not reuses(memory, 0, noise_seed=1, threshold=0.0)


@pytest.mark.parametrize(
    ("size", "models"),
    [((WIDTH // 2, HEIGHT // 2), MODELS), (SIZE, ("detect", "pose")), (SIZE, ("pose",))],
    ids=["another frame size", "more models", "other models"],
)
def test_another_size_or_model_set_is_inferred(
    size: tuple[int, int], models: tuple[str, ...]
) -> None:
    assert reuses(memory_of(), 0)
    assert not reuses(memory_of(), 0, size=size, models=models)


def test_each_session_compares_with_its_own_reference() -> None:
    still, panned = memory_of(0), memory_of(160)
    assert reuses(still, 0)
    assert not reuses(panned, 0)
    assert reuses(panned, 160)


def test_forgetting_leaves_no_reference() -> None:
    memory = memory_of()
    memory.forget()
    assert memory.reference is None
    assert not reuses(memory, 0)
