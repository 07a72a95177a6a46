"""Schemathesis against the control API's own OpenAPI document: no generated input, valid or
not, gets a 500, and every answer has a documented status, content type and schema."""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.control.harness import Issuer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = [
    "POST /api/sessions",
    "GET /api/status",
    "POST /api/sessions/{session_id}/keepalive",
    "DELETE /api/sessions/{session_id}",
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_errors(label: str, mode: GenerationMode, app: FastAPI, issuer: Issuer) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is missing from the OpenAPI document"
    headers = issuer.headers()

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=15,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def answers_as_documented(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    answers_as_documented()
