"""A `Transition` as one DynamoDB conditional update: SET/REMOVE its changes, guarded by its
expectations (and by the item existing, so an update never creates a record)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambdas.aws.codec import encode
from lambdas.domain.actions import Transition
from lambdas.domain.host_record import PARTITION_KEY

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
    assignments: list[str] = []
    removals: list[str] = []
    for index, (field, value) in enumerate(sorted(transition.changes.items())):
        names[f"#c{index}"] = field
        if value is None:
            removals.append(f"#c{index}")
        else:
            values[f":c{index}"] = encode(value)
            assignments.append(f"#c{index} = :c{index}")
    clauses = []
    if assignments:
        clauses.append("SET " + ", ".join(assignments))
    if removals:
        clauses.append("REMOVE " + ", ".join(removals))
    if not clauses:
        raise ValueError(f"{transition.name}: a transition must change something")
    return UpdateRequest(
        update=" ".join(clauses), condition=" AND ".join(conditions), names=names, values=values
    )
