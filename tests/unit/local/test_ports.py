"""Each host slot's ports: the configured ones first, then free ones kept for the run."""

from __future__ import annotations

from dataclasses import astuple

import pytest

from infra.local.ports import HostPorts, SlotPorts

FIRST = HostPorts(backend=8080, triton_http=8100, triton_grpc=8101, triton_metrics=8102)


def test_slot_zero_has_the_configured_ports() -> None:
    assert SlotPorts(FIRST)(0) == FIRST


def test_further_slots_take_distinct_ports_and_keep_them() -> None:
    offered = iter([8080, 9000, 9000, 9001, 8101, 9002, 9003, 9004, 9005, 9006, 9007])
    ports = SlotPorts(FIRST, pick=lambda: next(offered))
    one, two = ports(1), ports(2)
    assert one == HostPorts(9000, 9001, 9002, 9003), "taken and repeated offers are skipped"
    assert two == HostPorts(9004, 9005, 9006, 9007)
    assert ports(1) == one
    everything = [p for slot in (0, 1, 2) for p in astuple(ports(slot))]
    assert len(set(everything)) == len(everything)


def test_free_ports_by_default() -> None:
    assert len(set(astuple(SlotPorts(FIRST)(1))) - set(astuple(FIRST))) == 4


def test_no_negative_slot() -> None:
    with pytest.raises(ValueError, match="no slot"):
        SlotPorts(FIRST)(-1)
