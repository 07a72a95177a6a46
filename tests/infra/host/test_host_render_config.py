"""Rendering the host's settings: pure functions, real nginx on the rendered site, and the
whole `main` against a moto server standing in for SSM and Secrets Manager."""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest

from gpu_host.bootstrap import render_config
from gpu_host.bootstrap.render_config import (
    TEMPLATE,
    ConfigError,
    host_config,
    render_env_file,
    render_nginx_site,
    with_host_id,
    with_ticket_secret,
)
from infra.local.ports import free_port
from tests.infra.host.fakes import INSTANCE_ID, FakeImds

PREFIX = "/spinup/hosts"
SECRET = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
TICKET_SECRET = "T1c2K3e4T5s6E7c8R9e0T1o2F3a4T5l6E7a8S9t0Thirty2"
PUBLISHED = {
    f"{PREFIX}/env/SPINUP_TABLE_NAME": "spinup-control-State",
    f"{PREFIX}/env/SPINUP_JWKS_URL": "https://cognito-idp.us-east-1.amazonaws.com/p/.well-known/jwks.json",
    f"{PREFIX}/env/SPINUP_ALLOWED_ORIGINS": "https://d111.cloudfront.net",
    f"{PREFIX}/env/SPINUP_JWT_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/p",
    f"{PREFIX}/origin-port": "80",
    f"{PREFIX}/origin-verify-secret-arn": "arn:aws:secretsmanager:us-east-1:123:secret:x",
    f"{PREFIX}/ticket-secret-arn": "arn:aws:secretsmanager:us-east-1:123:secret:t",
    f"{PREFIX}/release": "s3://bucket/abc.zip",
}


def test_host_config_maps_env_parameters_to_variables() -> None:
    config = host_config(PUBLISHED, prefix=PREFIX)
    assert config.env == {
        "SPINUP_ALLOWED_ORIGINS": "https://d111.cloudfront.net",
        "SPINUP_JWKS_URL": "https://cognito-idp.us-east-1.amazonaws.com/p/.well-known/jwks.json",
        "SPINUP_JWT_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/p",
        "SPINUP_TABLE_NAME": "spinup-control-State",
    }
    assert config.origin_port == 80
    assert config.origin_secret_arn.startswith("arn:aws:secretsmanager:")
    assert config.ticket_secret_arn.endswith(":secret:t")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({f"{PREFIX}/env/spinup_lower": "x"}, "must look like SPINUP_FOO"),
        ({f"{PREFIX}/env/SPINUP_X": "two\nlines"}, "single line"),
        ({f"{PREFIX}/origin-port": "eighty"}, "must be a TCP port"),
        ({f"{PREFIX}/origin-port": "70000"}, "must be a TCP port"),
        ({f"{PREFIX}/origin-verify-secret-arn": ""}, "missing parameter"),
        ({f"{PREFIX}/ticket-secret-arn": ""}, "missing parameter"),
    ],
)
def test_host_config_rejects_bad_parameters(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        host_config({**PUBLISHED, **change}, prefix=PREFIX)


def test_host_config_needs_environment_parameters() -> None:
    only_port = {k: v for k, v in PUBLISHED.items() if "/env/" not in k}
    with pytest.raises(ConfigError, match="no parameters under"):
        host_config(only_port, prefix=PREFIX)


def test_the_ticket_secret_joins_the_environment() -> None:
    env = with_ticket_secret({"SPINUP_TABLE_NAME": "t"}, TICKET_SECRET)
    assert env == {"SPINUP_TABLE_NAME": "t", "SPINUP_TICKET_SECRET": TICKET_SECRET}


@pytest.mark.parametrize("published", [{}, {"SPINUP_HOST_ID": "gpu-0"}])
def test_the_host_id_is_the_instance_id(published: dict[str, str]) -> None:
    """Every host reads the same parameters; its id is its own, whatever SSM says."""
    env = with_host_id({"SPINUP_TABLE_NAME": "t", **published}, INSTANCE_ID)
    assert env == {"SPINUP_TABLE_NAME": "t", "SPINUP_HOST_ID": INSTANCE_ID}


@pytest.mark.parametrize(
    "instance_id", ["gpu-0", "", "i-0123456789abcdef0\nX=1", "i-0123456789abcdef0\n"]
)
def test_a_host_id_that_is_no_instance_id_is_refused(instance_id: str) -> None:
    with pytest.raises(ConfigError, match="not an instance id"):
        with_host_id({}, instance_id)


@pytest.mark.parametrize("secret", ["short", 'with"quote' + "x" * 40, "two\nlines" + "x" * 40])
def test_an_unsafe_ticket_secret_is_refused(secret: str) -> None:
    with pytest.raises(ConfigError, match="ticket secret"):
        with_ticket_secret({}, secret)


def test_env_file_quotes_values() -> None:
    text = render_env_file({"SPINUP_A": 'say "hi" \\ bye', "SPINUP_B": "plain"})
    assert 'SPINUP_A="say \\"hi\\" \\\\ bye"' in text
    assert 'SPINUP_B="plain"' in text
    assert text.endswith("\n")


@pytest.mark.parametrize(
    "secret", ["short", 'with"quote' + "x" * 40, "with space" + "x" * 40, "x" * 200]
)
def test_nginx_site_refuses_an_unsafe_secret(secret: str) -> None:
    with pytest.raises(ConfigError, match="origin secret"):
        render_nginx_site(
            TEMPLATE.read_text(), origin_port=80, origin_secret=secret, backend="127.0.0.1:8080"
        )


def test_nginx_site_leaves_no_placeholder() -> None:
    site = render_nginx_site(
        TEMPLATE.read_text(), origin_port=8081, origin_secret=SECRET, backend="127.0.0.1:9"
    )
    assert re.search(r"@[A-Z_]+@", site) is None
    assert f'"{SECRET}" 1;' in site
    assert "listen 8081 default_server;" in site
    with pytest.raises(ConfigError, match="unknown placeholders"):
        render_nginx_site("@NEW@", origin_port=80, origin_secret=SECRET, backend="127.0.0.1:8080")


# --- main() against moto -------------------------------------------------------------------


def test_main_renders_both_files_from_ssm_the_secret_and_metadata(
    aws_env: str, imds: FakeImds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = boto3.client("secretsmanager")
    secret_arn = secrets.create_secret(Name="origin", SecretString=SECRET)["ARN"]
    ticket_arn = secrets.create_secret(Name="tickets", SecretString=TICKET_SECRET)["ARN"]
    ssm = boto3.client("ssm")
    arns = {
        f"{PREFIX}/origin-verify-secret-arn": secret_arn,
        f"{PREFIX}/ticket-secret-arn": ticket_arn,
    }
    for name, value in {**PUBLISHED, **arns}.items():
        ssm.put_parameter(Name=name, Value=value, Type="String")
    env_file, site = tmp_path / "host.env", tmp_path / "spinup.conf"
    monkeypatch.setenv("SPINUP_SSM_PREFIX", PREFIX)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("SPINUP_ENV_FILE", str(env_file))
    monkeypatch.setenv("SPINUP_NGINX_SITE", str(site))
    monkeypatch.setenv("SPINUP_IMDS_URL", imds.url)

    assert render_config.main() == 0

    assert 'SPINUP_TABLE_NAME="spinup-control-State"' in env_file.read_text()
    assert f'SPINUP_HOST_ID="{INSTANCE_ID}"' in env_file.read_text()
    assert f'SPINUP_TICKET_SECRET="{TICKET_SECRET}"' in env_file.read_text()
    assert oct(env_file.stat().st_mode & 0o777) == "0o640"
    assert f'"{SECRET}" 1;' in site.read_text()
    assert oct(site.stat().st_mode & 0o777) == "0o640"


@pytest.mark.parametrize(("rendered_before", "exit_code"), [(True, 0), (False, 1)])
def test_main_without_aws_keeps_earlier_files_or_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rendered_before: bool, exit_code: int
) -> None:
    env_file, site = tmp_path / "host.env", tmp_path / "spinup.conf"
    if rendered_before:
        env_file.write_text("OLD=1\n")
        site.write_text("# old\n")
    for name, value in {
        "SPINUP_SSM_PREFIX": PREFIX,
        "AWS_REGION": "us-east-1",
        "SPINUP_ENV_FILE": str(env_file),
        "SPINUP_NGINX_SITE": str(site),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "SPINUP_IMDS_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_MAX_ATTEMPTS": "1",
        "SPINUP_SETTINGS_WAIT_S": "0",
    }.items():
        monkeypatch.setenv(name, value)
    assert render_config.main() == exit_code
    if rendered_before:
        assert env_file.read_text() == "OLD=1\n"


def test_main_without_instance_metadata_keeps_earlier_files_or_fails(
    aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSM and Secrets Manager answer, the metadata service does not: no host id, so no
    new settings; the first boot fails rather than render a host without an id."""
    secrets = boto3.client("secretsmanager")
    ssm = boto3.client("ssm")
    arns = {
        f"{PREFIX}/origin-verify-secret-arn": secrets.create_secret(
            Name="origin", SecretString=SECRET
        )["ARN"],
        f"{PREFIX}/ticket-secret-arn": secrets.create_secret(
            Name="tickets", SecretString=TICKET_SECRET
        )["ARN"],
    }
    for name, value in {**PUBLISHED, **arns}.items():
        ssm.put_parameter(Name=name, Value=value, Type="String")
    env_file, site = tmp_path / "host.env", tmp_path / "spinup.conf"
    for name, value in {
        "SPINUP_SSM_PREFIX": PREFIX,
        "AWS_REGION": "us-east-1",
        "SPINUP_ENV_FILE": str(env_file),
        "SPINUP_NGINX_SITE": str(site),
        "SPINUP_IMDS_URL": f"http://127.0.0.1:{free_port()}",
    }.items():
        monkeypatch.setenv(name, value)
    assert render_config.main() == 1
    assert not env_file.exists()
