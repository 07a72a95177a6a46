"""Model inputs to Triton through system shared memory instead of the request body.

The backend and Triton share a host. An input written into a shared-memory slot reaches
Triton without crossing the socket: no 0.5 MB HTTP body through the loopback TCP stack for a
`detect` frame, on either side (docs/performance.md). Triton's system shared memory
extension: the client creates a POSIX shared-memory object, registers it as a named region,
and each request's input names the region, an offset and a size instead of carrying data.
https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_shared_memory.md

`SharedSlots` is one such object per worker process, cut into equal slots that requests
lease one at a time. It never blocks and never grows: with no slot free (or an input larger
than a slot) the request carries its tensors in its body as before, which is always correct.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
"""Where Linux keeps POSIX shared-memory objects: Triton's `shm_open(key)` opens
`SHM_DIR / key`. On a host, the backend's and Triton's containers mount the same one."""
NAME_PREFIX = "spinup-"
ALIGNMENT = 64
"""Each tensor starts on a cache line."""


def region_name(pid: int | None = None) -> str:
    """A region (and object) name unique to this process: `spinup-<pid>-<random>`. The pid
    lets the supervisor remove a dead worker's object; the random part keeps two backends
    that share one Triton from ever naming the same region."""
    return f"{NAME_PREFIX}{os.getpid() if pid is None else pid}-{secrets.token_hex(4)}"


def remove_objects_of(pid: int, directory: Path = SHM_DIR) -> list[Path]:
    """Delete the shared-memory objects of process `pid`, which is dead (a killed worker
    could not): the memory goes once Triton, too, lets go of its mapping."""
    removed = []
    for path in directory.glob(f"{NAME_PREFIX}{pid}-*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def remove_objects_of_the_dead(
    alive: Callable[[int], bool], directory: Path = SHM_DIR
) -> list[Path]:
    """Delete the objects of every process that no longer runs (workers of a backend that
    was killed outright, whose supervisor could not). A pid alive again is left alone."""
    removed = []
    for path in directory.glob(f"{NAME_PREFIX}*-*"):
        pid = path.name.removeprefix(NAME_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            removed += remove_objects_of(int(pid), directory)
    return removed


def _aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGNMENT) * ALIGNMENT


class SharedSlots:
    """`slots` slots of `slot_bytes` each, in one shared-memory object of this process.

    Leases are LIFO, so that a few hot slots serve a steady load and the rest of the object
    is never touched (tmpfs allocates pages on first write)."""

    def __init__(
        self, *, slot_bytes: int, slots: int, name: str | None = None, directory: Path = SHM_DIR
    ) -> None:
        if slot_bytes <= 0 or slots <= 0:
            raise ValueError(f"slot_bytes and slots must be > 0, got {slot_bytes}, {slots}")
        self.name = name or region_name()
        self.slot_bytes = _aligned(slot_bytes)
        self.byte_size = self.slot_bytes * slots
        self._path = directory / self.name
        # Owner-only: frames are users' camera pictures. O_EXCL: never someone else's object.
        fd = os.open(self._path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, self.byte_size)
            self._map = mmap.mmap(fd, self.byte_size)
        except BaseException:
            self._path.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        self._free = list(range((slots - 1) * self.slot_bytes, -1, -self.slot_bytes))
        self._closed = False

    @property
    def key(self) -> str:
        """The object's name as `shm_open` takes it (Triton's registration `key`)."""
        return f"/{self.name}"

    @property
    def free(self) -> int:
        return len(self._free)

    def lease(self, sizes: Sequence[int]) -> int | None:
        """A free slot's offset for tensors of `sizes` bytes, or None: no slot free, they do
        not fit one, or the object is closed. Give it back with `release`."""
        if self._closed or not self._free or self.packed_size(sizes) > self.slot_bytes:
            return None
        return self._free.pop()

    def release(self, offset: int) -> None:
        if offset % self.slot_bytes or not 0 <= offset < self.byte_size or offset in self._free:
            raise ValueError(f"{offset} is not a leased slot of {self.name}")
        self._free.append(offset)

    @staticmethod
    def packed_size(sizes: Sequence[int]) -> int:
        """Bytes that tensors of `sizes` take in a slot, each aligned."""
        return sum(_aligned(size) for size in sizes)

    def place(self, offset: int, arrays: Sequence[npt.NDArray[np.generic]]) -> list[int]:
        """Copy `arrays` into the slot at `offset`, one after another: their offsets."""
        if self.packed_size([a.nbytes for a in arrays]) > self.slot_bytes:
            raise ValueError(f"tensors of {[a.nbytes for a in arrays]} bytes overflow a slot")
        offsets = []
        at = offset
        for array in arrays:
            target = np.ndarray(array.shape, array.dtype, buffer=self._map, offset=at)
            np.copyto(target, array, casting="no")
            offsets.append(at)
            at += _aligned(array.nbytes)
        return offsets

    def close(self) -> None:
        """Unmap and delete the object (Triton keeps its own mapping until unregistered)."""
        if self._closed:
            return
        self._closed = True
        self._free.clear()
        try:
            self._map.close()
        except BufferError:  # a view still exported (a request cancelled mid-copy): GC frees it
            log.debug("shared memory %s still viewed at close", self.name)
        self._path.unlink(missing_ok=True)
