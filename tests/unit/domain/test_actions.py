"""The shape of a decision: an `Update` names only fields of its record, a `Transition` changes
something, once per record; each call has a name for the logs."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.domain.actions import (
    Call,
    DeleteRoute,
    Protect,
    PutRoute,
    Replace,
    SetDesired,
    Transition,
    Update,
    call_name,
)
from lambdas.domain.host_record import FLEET_KEY, host_key

HOST = host_key("i-0aaaaaaaaaaaaaaa1")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"key": "session#abc", "set": {("released_at",): 1}}, "not a record of the control table"),
        ({"key": HOST, "expect": {"generaton": 1}}, r"not fields of HostRecord: \['generaton'\]"),
        ({"key": HOST, "add": {"versoin": 1}}, "not fields of HostRecord"),
        ({"key": HOST, "set": {("sessions", "ann"): None}}, "not fields of HostRecord"),
        ({"key": FLEET_KEY, "set": {("generation",): 1}}, "not fields of FleetRecord"),
        ({"key": FLEET_KEY, "present": (("sesions", "ann"),)}, "not fields of FleetRecord"),
        ({"key": FLEET_KEY, "smaller": ((("session", "ann"), 2),)}, "not fields of FleetRecord"),
    ],
    ids=[
        "a_session_item",
        "a_typo_in_a_guard",
        "a_typo_in_an_increment",
        "a_fleet_field_on_a_host",
        "a_host_field_on_the_fleet",
        "a_typo_in_a_path",
        "a_typo_in_a_size_guard",
    ],
)
def test_an_update_names_only_fields_of_its_record(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Update(**kwargs)


@pytest.mark.parametrize(
    ("updates", "words"),
    [
        ((), "updates at least one record"),
        ((Update(HOST, set={("message",): ""}), Update(HOST, add={"generation": 1})), "one update"),
        ((Update(FLEET_KEY, present=(("sessions", "ann"),)),), "must change something"),
    ],
    ids=["nothing", "a_record_twice", "condition_checks_only"],
)
def test_a_transition_changes_something_once_per_record(
    updates: tuple[Update, ...], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        Transition("t", updates)


def test_a_transition_may_check_one_record_and_change_another() -> None:
    check = Update(FLEET_KEY, present=(("sessions", "ann", "s1"),))
    change = Update(HOST, add={"generation": 1})
    assert not check.changes_something
    assert Transition("keepalive", (check, change)).updates == (check, change)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (SetDesired(2), "set_desired_capacity(2)"),
        (Protect("i-1", protected=True), "protect(i-1)"),
        (Protect("i-1", protected=False), "unprotect(i-1)"),
        (Replace("i-1"), "replace(i-1)"),
        (PutRoute("i-1", "ec2.example"), "put_route(i-1)"),
        (DeleteRoute("i-1"), "delete_route(i-1)"),
    ],
)
def test_every_call_has_a_name(call: Call, name: str) -> None:
    assert call_name(call) == name
