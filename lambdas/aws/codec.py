"""Python values ⇄ DynamoDB attribute values (numbers travel as Decimal; floats are not allowed)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo_types(value: object) -> object:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(key): _to_dynamo_types(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo_types(item) for item in value]
    return value


def encode(value: object) -> AttributeValueTypeDef:
    encoded: AttributeValueTypeDef = _serializer.serialize(_to_dynamo_types(value))
    return encoded


def encode_item(item: Mapping[str, object]) -> dict[str, AttributeValueTypeDef]:
    return {key: encode(value) for key, value in item.items()}


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers come back as Decimal; the pydantic models read them as int or float."""
    return {key: _deserializer.deserialize(value) for key, value in item.items()}
