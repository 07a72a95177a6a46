"""The config renderer waits for missing settings and names them: the pure check, the wait
over a fake clock, and `main` against a moto SSM whose settings appear while it waits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from gpu_host.bootstrap import parameters, render_config
from gpu_host.bootstrap.render_config import (
    SettingsUnavailableError,
    await_settings,
    missing_settings,
)
from tests.infra.host.fakes import INSTANCE_ID, FakeImds
from tests.infra.host.test_host_render_config import PREFIX, PUBLISHED, SECRET, TICKET_SECRET
from tests.support.waiting import eventually

JWKS = f"{PREFIX}/env/SPINUP_JWKS_URL"
TICKET_ARN = f"{PREFIX}/ticket-secret-arn"


def _without(*names: str) -> dict[str, str]:
    return {k: v for k, v in PUBLISHED.items() if k not in names}


@pytest.mark.parametrize(
    ("published", "missing"),
    [
        pytest.param(PUBLISHED, [], id="complete"),
        pytest.param(_without(JWKS), [JWKS], id="one env setting"),
        pytest.param({**PUBLISHED, JWKS: ""}, [JWKS], id="an empty value is missing"),
        pytest.param(_without(JWKS, TICKET_ARN), [TICKET_ARN, JWKS], id="two, in order"),
        pytest.param(
            {},
            [f"{PREFIX}/{n}" for n in parameters.REQUIRED]
            + [f"{PREFIX}/env/{n}" for n in parameters.REQUIRED_ENV],
            id="nothing published",
        ),
    ],
)
def test_missing_settings(published: Mapping[str, str], missing: list[str]) -> None:
    assert missing_settings(published, prefix=PREFIX) == missing


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def _reader(
    *answers: Mapping[str, str] | Exception,
) -> tuple[list[int], Callable[[], Mapping[str, str]]]:
    """A read that gives `answers` in turn (the last one again and again); counts calls."""
    calls = [0]

    def read() -> Mapping[str, str]:
        answer = answers[min(calls[0], len(answers) - 1)]
        calls[0] += 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    return calls, read


def test_waits_through_an_unreachable_ssm_and_missing_settings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    calls, read = _reader(
        EndpointConnectionError(endpoint_url="https://ssm"), _without(JWKS, TICKET_ARN), PUBLISHED
    )
    with caplog.at_level(logging.WARNING, logger=render_config.__name__):
        published = await_settings(
            read,
            prefix=PREFIX,
            wait_s=60,
            first_pause_s=1,
            clock=clock,
            pause=clock.pause,
        )
    assert published == PUBLISHED
    assert calls == [3]
    assert clock.pauses == [1, 2]  # doubling
    unreachable, missing = (r.getMessage() for r in caplog.records)
    assert "SSM unreachable" in unreachable
    assert f"missing in SSM: {TICKET_ARN}, {JWKS}" in missing


def test_pauses_grow_to_a_cap_and_the_wait_is_bounded() -> None:
    clock = FakeClock()
    _, read = _reader(_without(JWKS))
    with pytest.raises(SettingsUnavailableError, match=f"missing in SSM: {JWKS}; gave up"):
        await_settings(
            read,
            prefix=PREFIX,
            wait_s=100,
            first_pause_s=4,
            clock=clock,
            pause=clock.pause,
        )
    assert clock.pauses == [4, 8, 16, 30, 30, 12]  # capped at 30 s, the last one to the bound
    assert clock.now == 100


def test_no_wait_at_all_when_the_bound_is_zero() -> None:
    clock = FakeClock()
    _, read = _reader(_without(JWKS))
    with pytest.raises(SettingsUnavailableError):
        await_settings(
            read,
            prefix=PREFIX,
            wait_s=0,
            first_pause_s=1,
            clock=clock,
            pause=clock.pause,
        )
    assert clock.pauses == []


# --- main() against moto: the settings appear while it waits ----------------------------------


@pytest.fixture
def host_env(
    aws_env: str, imds: FakeImds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Every published setting but the JWKS URL and the ticket secret's ARN."""
    secrets = boto3.client("secretsmanager")
    arns = {
        f"{PREFIX}/origin-verify-secret-arn": secrets.create_secret(
            Name="origin", SecretString=SECRET
        )["ARN"],
        TICKET_ARN: secrets.create_secret(Name="tickets", SecretString=TICKET_SECRET)["ARN"],
    }
    ssm = boto3.client("ssm")
    origin = f"{PREFIX}/origin-verify-secret-arn"
    for name, value in {**_without(JWKS, TICKET_ARN), origin: arns[origin]}.items():
        ssm.put_parameter(Name=name, Value=value, Type="String")
    for name, value in {
        "SPINUP_SSM_PREFIX": PREFIX,
        "AWS_REGION": "us-east-1",
        "SPINUP_ENV_FILE": str(tmp_path / "host.env"),
        "SPINUP_NGINX_SITE": str(tmp_path / "spinup.conf"),
        "SPINUP_IMDS_URL": imds.url,
        "SPINUP_SETTINGS_RETRY_S": "0.05",
    }.items():
        monkeypatch.setenv(name, value)
    return {JWKS: PUBLISHED[JWKS], TICKET_ARN: arns[TICKET_ARN]}


def test_main_waits_for_the_missing_settings_then_renders(
    host_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SPINUP_SETTINGS_WAIT_S", "60")
    exit_codes: list[int] = []
    caplog.set_level(logging.WARNING, logger=render_config.__name__)
    runner = threading.Thread(target=lambda: exit_codes.append(render_config.main()))
    runner.start()
    try:
        eventually(
            lambda: [r.getMessage() for r in caplog.records],
            lambda lines: any(f"missing in SSM: {TICKET_ARN}, {JWKS}" in x for x in lines),
            what="a log line naming both missing settings",
        )
        assert not (tmp_path / "host.env").exists()
        ssm = boto3.client("ssm")
        for name, value in host_env.items():
            ssm.put_parameter(Name=name, Value=value, Type="String")
    finally:
        runner.join(timeout=30)
    assert exit_codes == [0]
    rendered = (tmp_path / "host.env").read_text()
    assert f'SPINUP_JWKS_URL="{PUBLISHED[JWKS]}"' in rendered
    assert f'SPINUP_HOST_ID="{INSTANCE_ID}"' in rendered


def test_main_gives_up_at_the_bound_naming_what_is_missing(
    host_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SPINUP_SETTINGS_WAIT_S", "0.2")
    with caplog.at_level(logging.ERROR, logger=render_config.__name__):
        assert render_config.main() == 1
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"missing in SSM: {TICKET_ARN}, {JWKS}" in error
    assert not (tmp_path / "host.env").exists()
