"""The domain's `Update`s as DynamoDB conditional updates (or, inside a transaction, condition
checks): SET/REMOVE/ADD its changes, guarded by its expectations. Every update is guarded by
the item existing, so that it never creates a record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambdas.aws.codec import encode
from lambdas.domain.actions import Path, Update
from lambdas.domain.host_record import PARTITION_KEY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


@dataclass(frozen=True)
class UpdateRequest:
    update: str
    """Empty for a condition check."""
    condition: str
    names: dict[str, str]
    values: dict[str, AttributeValueTypeDef]


class _Names:
    """Expression attribute names, one placeholder per distinct name."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {"#pk": PARTITION_KEY}
        self._by_name: dict[str, str] = {PARTITION_KEY: "#pk"}

    def path(self, path: Path) -> str:
        return ".".join(self._name(step) for step in path)

    def _name(self, name: str) -> str:
        if name not in self._by_name:
            placeholder = f"#n{len(self._by_name)}"
            self._by_name[name] = placeholder
            self.names[placeholder] = name
        return self._by_name[name]


def update_request(update: Update) -> UpdateRequest:
    names = _Names()
    values: dict[str, AttributeValueTypeDef] = {}

    def value(v: object) -> str:
        placeholder = f":v{len(values)}"
        values[placeholder] = encode(v)
        return placeholder

    conditions = ["attribute_exists(#pk)"]
    for field, expected in sorted(update.expect.items()):
        name = names.path((field,))
        if expected is None:
            conditions.append(f"attribute_not_exists({name})")
        else:
            conditions.append(f"{name} = {value(expected)}")
    conditions += [f"attribute_exists({names.path(p)})" for p in update.present]
    conditions += [f"attribute_not_exists({names.path(p)})" for p in update.absent]
    conditions += [f"size({names.path(p)}) < {value(n)}" for p, n in update.smaller]

    assignments: list[str] = []
    removals: list[str] = []
    for path, new in sorted(update.set.items()):
        if new is None:
            removals.append(names.path(path))
        else:
            assignments.append(f"{names.path(path)} = {value(new)}")
    for field, amount in sorted(update.add.items()):
        name = names.path((field,))
        assignments.append(f"{name} = if_not_exists({name}, {value(0)}) + {value(amount)}")
    clauses = []
    if assignments:
        clauses.append("SET " + ", ".join(assignments))
    if removals:
        clauses.append("REMOVE " + ", ".join(removals))
    return UpdateRequest(
        update=" ".join(clauses),
        condition=" AND ".join(conditions),
        names=names.names,
        values=values,
    )
