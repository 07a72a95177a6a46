"""The domain's changes as DynamoDB conditional updates: a `Transition` (SET/REMOVE its changes,
guarded by its expectations) and a `LeaseChange` (one session's lease, guarded by the user's
leases). Every update is guarded by the item existing, so that it never creates a record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambdas.aws.codec import encode
from lambdas.domain.actions import Transition, Value
from lambdas.domain.host_record import PARTITION_KEY
from lambdas.domain.leases import LeaseChange, LeaseGuard

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


@dataclass(frozen=True)
class UpdateRequest:
    update: str
    condition: str
    names: dict[str, str]
    values: dict[str, AttributeValueTypeDef]


def conditional_update(transition: Transition) -> UpdateRequest:
    names: dict[str, str] = {"#pk": PARTITION_KEY}
    values: dict[str, AttributeValueTypeDef] = {}
    conditions = ["attribute_exists(#pk)"]
    for index, (field, expected) in enumerate(sorted(transition.expect.items())):
        names[f"#e{index}"] = field
        if expected is None:
            conditions.append(f"attribute_not_exists(#e{index})")
        else:
            values[f":e{index}"] = encode(expected)
            conditions.append(f"#e{index} = :e{index}")
    assignments, removals = _changes(transition.changes, names, values)
    return _request(transition.name, assignments, removals, conditions, names, values)


def lease_update(change: LeaseChange) -> UpdateRequest:
    names: dict[str, str] = {"#sessions": "sessions", "#u": change.user}
    values: dict[str, AttributeValueTypeDef] = {}
    user_leases = "#sessions.#u"
    lease_path = "#sessions.#u.#s"
    match change.guard:
        case LeaseGuard.FIRST:
            conditions = ["attribute_exists(#sessions)", f"attribute_not_exists({user_leases})"]
        case LeaseGuard.ROOM:
            conditions = ["attribute_exists(#sessions)", f"size({user_leases}) < :limit"]
            values[":limit"] = encode(change.limit)
        case LeaseGuard.LIVE:
            conditions = [f"attribute_exists({lease_path})"]
    if change.guard is not LeaseGuard.FIRST:  # DynamoDB refuses names an expression leaves unused
        names["#s"] = change.session_id
    assignments, removals = _changes(change.changes, names, values)
    if change.lease is not None:
        lease = change.lease.model_dump()
        if change.guard is LeaseGuard.FIRST:  # the user's map is created with the lease in it
            assignments.append(f"{user_leases} = :lease")
            values[":lease"] = encode({change.session_id: lease})
        else:
            assignments.append(f"{lease_path} = :lease")
            values[":lease"] = encode(lease)
    if change.drop:
        removals.append(lease_path)
    if change.bump_generation:
        names["#generation"] = "generation"
        values[":one"] = encode(1)
        assignments.append("#generation = #generation + :one")
    return _request(change.name, assignments, removals, conditions, names, values)


def _changes(
    changes: Mapping[str, Value], names: dict[str, str], values: dict[str, AttributeValueTypeDef]
) -> tuple[list[str], list[str]]:
    """Field → value as SET assignments and REMOVE paths (None removes)."""
    assignments: list[str] = []
    removals: list[str] = []
    for index, (field, value) in enumerate(sorted(changes.items())):
        names[f"#c{index}"] = field
        if value is None:
            removals.append(f"#c{index}")
        else:
            values[f":c{index}"] = encode(value)
            assignments.append(f"#c{index} = :c{index}")
    return assignments, removals


def _request(
    name: str,
    assignments: list[str],
    removals: list[str],
    conditions: list[str],
    names: dict[str, str],
    values: dict[str, AttributeValueTypeDef],
) -> UpdateRequest:
    clauses = []
    if assignments:
        clauses.append("SET " + ", ".join(assignments))
    if removals:
        clauses.append("REMOVE " + ", ".join(removals))
    if not clauses:
        raise ValueError(f"{name}: a transition must change something")
    return UpdateRequest(
        update=" ".join(clauses), condition=" AND ".join(conditions), names=names, values=values
    )
