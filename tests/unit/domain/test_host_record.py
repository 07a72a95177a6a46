"""The host record's contract: keys, the backend's fields, and the updates it makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lambdas.domain.host_record import (
    BackendField,
    HostRecord,
    Milestone,
    heartbeat_update,
    host_key,
    milestone_update,
    session_key,
    sessions_update,
)


def test_keys() -> None:
    assert host_key("gpu-0") == "host#gpu-0"
    assert session_key("abc") == "session#abc"


@pytest.mark.parametrize("field", [*Milestone, *BackendField])
def test_every_backend_field_is_a_host_record_field(field: str) -> None:
    assert field in HostRecord.model_fields


@pytest.mark.parametrize("milestone", list(Milestone))
def test_a_milestone_sets_its_field(milestone: Milestone) -> None:
    update = milestone_update(milestone, 12.5)
    assert update.expression == f"SET {milestone.value} = :now"
    assert update.values == {":now": 12.5}


def test_a_session_count_is_not_activity() -> None:
    update = sessions_update(3)
    assert update.expression == "SET connected_sessions = :n"
    assert "generation" not in update.expression


def test_a_heartbeat_is_activity() -> None:
    update = heartbeat_update(12.5, sessions=2)
    assert update.expression == (
        "SET last_inference_at = :now, connected_sessions = :n ADD generation :one"
    )
    assert update.values == {":now": 12.5, ":n": 2, ":one": 1}


def test_the_contract_imports_without_boto3() -> None:
    """The GPU backend imports it at start; keep it free of the AWS SDK."""
    code = (
        "import sys; import lambdas.domain.host_record; "
        "sys.exit(any(m.split('.')[0] in ('boto3', 'botocore') for m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[3]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0
