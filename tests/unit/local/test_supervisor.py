"""Each host's stack: its slot's ports and directory, and a backend that knows its host id."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.ports import HostPorts, SlotPorts, free_port
from infra.local.settings import LocalSettings
from infra.local.supervisor import backend_env, host_stacks

FIRST = HostPorts(8080, 8100, 8101, 8102)
SECOND = HostPorts(9080, 9100, 9101, 9102)


@pytest.fixture
def local(tmp_path: Path) -> LocalSettings:
    return LocalSettings(
        run_dir=tmp_path / "run",
        user_models=tmp_path / "none" / "user_models.json",
        served_models=("text",),
    )


def test_every_backend_gets_the_shared_settings(local: LocalSettings) -> None:
    env = backend_env(
        local,
        base={"PATH": "/bin"},
        jwks_url="http://127.0.0.1:8000/.well-known/jwks.json",
        jwt_issuer="http://127.0.0.1:8000",
        jwt_audience="spinup",
        table_name="spinup-local",
        aws_endpoint_url="http://127.0.0.1:5000",
        ticket_secret="s" * 48,
    )
    assert env["PATH"] == "/bin"
    assert env["SPINUP_ALLOWED_ORIGINS"] == "http://127.0.0.1:8000", "the UI's origin"
    assert env["SPINUP_MODELS"] == "text"
    assert "SPINUP_HOST_ID" not in env, "each host adds its own"


@pytest.mark.parametrize(("slot", "ports"), [(0, FIRST), (1, SECOND)])
def test_each_slot_has_its_ports_directory_and_host_id(
    local: LocalSettings, slot: int, ports: HostPorts
) -> None:
    picks = iter([9080, 9100, 9101, 9102])
    make = host_stacks(local, SlotPorts(FIRST, pick=lambda: next(picks)), {"SPINUP_X": "1"})
    stack = make(slot, "i-0123456789abcdef0")
    assert stack.ports == ports
    assert stack.run_dir == local.run_dir / "hosts" / f"slot-{slot}"
    assert stack.ready_url == f"http://127.0.0.1:{ports.backend}/health/ready"
    assert stack.backend_env == {
        "SPINUP_X": "1",
        "SPINUP_HOST_ID": "i-0123456789abcdef0",
        "SPINUP_TRITON_URL": f"http://127.0.0.1:{ports.triton_http}",
    }


def test_a_stack_stopped_before_it_started_never_starts(local: LocalSettings) -> None:
    free = HostPorts(free_port(), free_port(), free_port(), free_port())
    stack = host_stacks(local, SlotPorts(free), {})(0, "i-0123456789abcdef0")
    stack.stop()
    stack.start()  # no Triton is spawned: start returns at once
    assert stack.failure() is None
    assert not stack.ready()


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, ("face", "text", "ocr")), ({"SPINUP_DEFAULT_MODELS": "ocr"}, ("text", "ocr"))],
)
def test_triton_loads_the_backends_startup_models(
    tmp_path: Path, env: dict[str, str], expected: tuple[str, ...]
) -> None:
    """The backend's settings decide (SPINUP_DEFAULT_MODELS, else its default; none of the
    default detect/pose served here: every served model)."""
    local = LocalSettings(
        run_dir=tmp_path / "run",
        user_models=tmp_path / "none" / "user_models.json",
        served_models=("face", "text", "ocr"),
    )
    stack = host_stacks(local, SlotPorts(FIRST, pick=free_port), env)(0, "i-0")
    assert stack.startup_models() == expected
