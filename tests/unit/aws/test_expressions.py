"""An `Update` becomes one DynamoDB update expression with its condition: placeholders for
every name (paths into maps included), REMOVE for None, increments that work on an absent
number, and the guards as conditions on an item that must exist."""

from __future__ import annotations

import pytest

from lambdas.aws.expressions import update_request
from lambdas.domain.actions import Update
from lambdas.domain.host_record import FLEET_KEY, host_key

HOST = host_key("i-0aaaaaaaaaaaaaaa1")


def test_guards_sets_removals_and_increments() -> None:
    request = update_request(
        Update(
            key=HOST,
            expect={"run_open": True, "generation": 7, "error": None},
            set={("stopped_at",): 1.5, ("error",): None, ("message",): "idle"},
            add={"generation": 1},
        )
    )
    assert request.condition == (
        "attribute_exists(#pk) AND attribute_not_exists(#n1) AND #n2 = :v0 AND #n3 = :v1"
    )
    assert request.update == (
        "SET #n4 = :v2, #n5 = :v3, #n2 = if_not_exists(#n2, :v4) + :v5 REMOVE #n1"
    )
    assert request.names == {
        "#pk": "pk",
        "#n1": "error",
        "#n2": "generation",
        "#n3": "run_open",
        "#n4": "message",
        "#n5": "stopped_at",
    }
    assert request.values == {
        ":v0": {"N": "7"},
        ":v1": {"BOOL": True},
        ":v2": {"S": "idle"},
        ":v3": {"N": "1.5"},
        ":v4": {"N": "0"},
        ":v5": {"N": "1"},
    }


def test_paths_into_maps_name_every_step_once() -> None:
    """User names and session ids are data, never expression syntax: each is a placeholder
    (a user called `size` or `a.b` must not change the expression)."""
    request = update_request(
        Update(
            key=FLEET_KEY,
            expect={"version": 3},
            present=(("sessions", "a.b", "s-1"),),
            set={("sessions", "a.b", "s-1", "host_id"): "i-1", ("version",): 4},
        )
    )
    assert (
        request.condition == "attribute_exists(#pk) AND #n1 = :v0 AND attribute_exists(#n2.#n3.#n4)"
    )
    assert request.update == "SET #n2.#n3.#n4.#n5 = :v1, #n1 = :v2"
    assert request.names == {
        "#pk": "pk",
        "#n1": "version",
        "#n2": "sessions",
        "#n3": "a.b",
        "#n4": "s-1",
        "#n5": "host_id",
    }


LEASE = {"created_at": 1.5, "expires_at": 2.5}
LEASE_VALUE = {"M": {"created_at": {"N": "1.5"}, "expires_at": {"N": "2.5"}}}


@pytest.mark.parametrize(
    ("update", "condition", "values"),
    [
        (
            Update(
                key=FLEET_KEY,
                present=(("sessions",),),
                absent=(("sessions", "ann"),),
                set={("sessions", "ann"): {"s1": LEASE}},
            ),
            "attribute_exists(#pk) AND attribute_exists(#n1) AND attribute_not_exists(#n1.#n2)",
            {":v0": {"M": {"s1": LEASE_VALUE}}},
        ),
        (
            Update(
                key=FLEET_KEY,
                smaller=((("sessions", "ann"), 2),),
                set={("sessions", "ann", "s2"): LEASE},
            ),
            "attribute_exists(#pk) AND size(#n1.#n2) < :v0",
            {":v0": {"N": "2"}, ":v1": LEASE_VALUE},
        ),
    ],
    ids=["a_users_first_lease", "room_under_the_limit"],
)
def test_the_per_user_guards(update: Update, condition: str, values: object) -> None:
    request = update_request(update)
    assert request.condition == condition
    assert request.values == values


def test_a_condition_check_has_no_update() -> None:
    request = update_request(Update(key=FLEET_KEY, present=(("sessions", "ann", "s1"),)))
    assert request.update == ""
    assert request.condition == "attribute_exists(#pk) AND attribute_exists(#n1.#n2.#n3)"
    assert request.values == {}


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ((1.0, 2.5), {"L": [{"N": "1.0"}, {"N": "2.5"}]}),
        ({}, {"M": {}}),
        (0, {"N": "0"}),
        (False, {"BOOL": False}),
        ("", {"S": ""}),
    ],
    ids=["tuple_as_list", "empty_map", "zero", "false", "empty_string"],
)
def test_values_are_encoded(value: object, encoded: object) -> None:
    request = update_request(Update(key=FLEET_KEY, set={("cold_starts",): value}))  # type: ignore[dict-item]
    assert request.values == {":v0": encoded}
    assert request.update == "SET #n1 = :v0"


def test_every_update_requires_the_record_to_exist() -> None:
    """The backend and reconcile never create a record by updating it."""
    request = update_request(Update(key=HOST, set={("message",): "x"}))
    assert request.condition == "attribute_exists(#pk)"
