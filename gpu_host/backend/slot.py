"""The per-session frame buffer: one slot, newest wins."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class NewestWinsSlot(Generic[T]):
    """Holds at most ONE item. Drop policy: newest wins — `put` while an item waits replaces
    it, and the replaced item counts as dropped. A slow consumer therefore always gets the
    freshest frame and memory stays bounded, whatever the client sends."""

    def __init__(self) -> None:
        self._item: T | None = None
        self._filled = asyncio.Event()
        self.dropped = 0
        """How many items were replaced before anyone took them, since creation."""

    def put(self, item: T) -> T | None:
        """Store `item`; return the item it displaced (already counted as dropped), if any."""
        displaced = self._item
        if displaced is not None:
            self.dropped += 1
        self._item = item
        self._filled.set()
        return displaced

    async def get(self) -> T:
        """Wait for an item and take it, leaving the slot empty."""
        while self._item is None:
            self._filled.clear()
            await self._filled.wait()
        item, self._item = self._item, None
        self._filled.clear()
        return item
