"""The per-session buffer: one slot, newest wins, drops counted."""

from __future__ import annotations

import asyncio

from gpu_host.backend.slot import NewestWinsSlot


async def test_put_into_empty_slot_drops_nothing() -> None:
    slot: NewestWinsSlot[int] = NewestWinsSlot()
    assert slot.put(1) is None
    assert slot.dropped == 0
    assert await slot.get() == 1
    assert slot.put(2) is None, "taking the item emptied the slot"
    assert slot.dropped == 0


async def test_newer_frame_replaces_the_waiting_one_and_counts_a_drop() -> None:
    """Given a waiting frame, when two more arrive before the worker takes one,
    then only the newest is delivered and two are counted as dropped."""
    slot: NewestWinsSlot[int] = NewestWinsSlot()
    slot.put(1)
    assert slot.put(2) == 1
    assert slot.put(3) == 2
    assert await slot.get() == 3
    assert slot.dropped == 2


async def test_get_waits_for_the_next_put() -> None:
    slot: NewestWinsSlot[str] = NewestWinsSlot()
    getter = asyncio.create_task(slot.get())
    await asyncio.sleep(0)  # one turn of the loop: the getter runs until it blocks
    assert not getter.done()
    slot.put("frame")
    assert await asyncio.wait_for(getter, 1) == "frame"
    assert slot.dropped == 0


async def test_taken_frames_are_never_counted_as_dropped() -> None:
    slot: NewestWinsSlot[int] = NewestWinsSlot()
    for i in range(5):
        slot.put(i)
        assert await slot.get() == i
    assert slot.dropped == 0
