"""A transition becomes one conditional DynamoDB update, guarded by what was read."""

from __future__ import annotations

import pytest

from lambdas.aws.expressions import conditional_update
from lambdas.domain.actions import Transition


def test_changes_and_expectations_become_set_remove_and_conditions() -> None:
    request = conditional_update(
        Transition(
            "stop",
            expect={"generation": 7, "run_open": True, "error": None},
            changes={"desired": "stopped", "stopped_at": 1.5, "error": None},
        )
    )
    assert request.condition == (
        "attribute_exists(#pk) AND attribute_not_exists(#e0) AND #e1 = :e1 AND #e2 = :e2"
    )
    assert request.update == "SET #c0 = :c0, #c2 = :c2 REMOVE #c1"
    assert request.names == {
        "#pk": "pk",
        "#e0": "error",
        "#e1": "generation",
        "#e2": "run_open",
        "#c0": "desired",
        "#c1": "error",
        "#c2": "stopped_at",
    }
    assert request.values == {
        ":e1": {"N": "7"},
        ":e2": {"BOOL": True},
        ":c0": {"S": "stopped"},
        ":c2": {"N": "1.5"},
    }


def test_maps_and_lists_are_encoded() -> None:
    request = conditional_update(
        Transition("t", expect={}, changes={"sessions": {}, "cold_starts": (1.0, 2.5)})
    )
    assert request.values == {
        ":c0": {"L": [{"N": "1.0"}, {"N": "2.5"}]},
        ":c1": {"M": {}},
    }


def test_a_transition_names_only_host_record_fields() -> None:
    with pytest.raises(ValueError, match="not host record fields"):
        Transition("typo", expect={"generaton": 1}, changes={"desired": "stopped"})


def test_a_transition_must_change_something() -> None:
    with pytest.raises(ValueError, match="must change something"):
        conditional_update(Transition("noop", expect={"generation": 1}, changes={}))
