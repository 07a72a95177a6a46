"""Loopback ports: free ones for tests and benchmarks, and each local host's own set."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import astuple, dataclass


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS's pick; tiny race until it is bound)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class HostPorts:
    """One host stack's ports: its backend (the host's origin) and its Triton."""

    backend: int
    triton_http: int
    triton_grpc: int
    triton_metrics: int


class SlotPorts:
    """The ports of each host slot (`infra.local.fleet.HostMetadata.slot`).

    Slot 0 has the configured ports (`SPINUP_LOCAL_BACKEND_PORT`, ...), so one host runs where
    it always did; each further slot takes free ports the first time it is used and keeps them
    for the run, so a host that comes back on the same slot has the same origin.
    """

    def __init__(self, first: HostPorts, *, pick: Callable[[], int] = free_port) -> None:
        self._pick = pick
        self._lock = threading.Lock()
        self._slots: dict[int, HostPorts] = {0: first}

    def __call__(self, slot: int) -> HostPorts:
        if slot < 0:
            raise ValueError(f"no slot {slot}")
        with self._lock:
            if slot not in self._slots:
                taken = {port for ports in self._slots.values() for port in astuple(ports)}
                picked: list[int] = []
                while len(picked) < 4:
                    port = self._pick()
                    if port not in taken and port not in picked:
                        picked.append(port)
                self._slots[slot] = HostPorts(*picked)
            return self._slots[slot]
