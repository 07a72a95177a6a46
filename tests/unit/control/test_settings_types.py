"""The settings value types every settings model shares: comma lists and instance types."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from lambdas.settings_types import CommaList, InstanceTypes

COMMA_LIST: TypeAdapter[tuple[str, ...]] = TypeAdapter(CommaList)
INSTANCE_TYPES: TypeAdapter[tuple[str, ...]] = TypeAdapter(InstanceTypes)


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("a", ("a",)),
        (" a , b ,", ("a", "b")),
        ("", ()),
        (" , ", ()),
        (["a", "b"], ("a", "b")),
        (("a",), ("a",)),
    ],
)
def test_a_comma_list_is_a_string_or_a_list(raw: object, parsed: tuple[str, ...]) -> None:
    assert COMMA_LIST.validate_python(raw) == parsed


@pytest.mark.parametrize("raw", [5, {"a": 1}, [1, 2]])
def test_anything_else_is_refused(raw: object) -> None:
    with pytest.raises(ValidationError):
        COMMA_LIST.validate_python(raw)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("", "at least one instance type"),
        ("g5.xlarge,G6 XL", "not an EC2 instance type: G6 XL"),
        ("g5.xlarge,g5.xlarge", "listed twice"),
        (5, "a comma-separated string or a list"),
    ],
)
def test_bad_instance_types_are_named(raw: object, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        INSTANCE_TYPES.validate_python(raw)


def test_instance_types_keep_their_order() -> None:
    assert INSTANCE_TYPES.validate_python("g6.xlarge, g4dn.xlarge") == ("g6.xlarge", "g4dn.xlarge")
