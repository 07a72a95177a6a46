"""The boot scripts, the container units and the names they share with the CDK app."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_host.backend.triton_shm import SHM_DIR
from gpu_host.bootstrap import parameters
from gpu_host.models.tensorrt import DEFAULT_ENGINE_CACHE
from infra.config import DeployConfig, release_parameter
from tests.infra.host.host_boot_support import BOOTSTRAP_DIR, SYSTEMD_DIR, docker_run

SCRIPTS = ("first-boot.sh", "bootstrap.sh")
ASSET_HASH = "a" * 64
REPO_ROOT = BOOTSTRAP_DIR.parents[1]


def _bash(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", *args],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env=env,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse(script: str) -> None:
    result = subprocess.run(
        ["bash", "-n", str(BOOTSTRAP_DIR / script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_first_boot_refuses_to_run_without_its_inputs() -> None:
    result = subprocess.run(
        ["bash", str(BOOTSTRAP_DIR / "first-boot.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "SPINUP_SSM_PREFIX" in result.stderr


@pytest.mark.parametrize("args", [[], ["bogus"]])
def test_bootstrap_usage(args: list[str]) -> None:
    result = subprocess.run(
        ["bash", str(BOOTSTRAP_DIR / "bootstrap.sh"), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "usage" in result.stderr


def test_bootstrap_install_rejects_a_directory_that_is_no_release(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(BOOTSTRAP_DIR / "bootstrap.sh"), "install", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "not an unpacked release" in result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"s3://cdk-assets-123-us-east-1/{ASSET_HASH}.zip", ASSET_HASH),
        (f"s3://bucket/prefix/{ASSET_HASH}.zip", ASSET_HASH),
    ],
)
def test_release_id_is_the_asset_hash(url: str, expected: str) -> None:
    result = _bash(f'source "{BOOTSTRAP_DIR / "bootstrap.sh"}"; release_id "{url}"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize("url", ["s3://bucket/latest.zip", "s3://bucket/../../etc.zip", ""])
def test_release_id_rejects_anything_else(url: str) -> None:
    result = _bash(f'source "{BOOTSTRAP_DIR / "bootstrap.sh"}"; release_id "{url}"')
    assert result.returncode == 1
    assert "unexpected release URL" in result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_read_the_release_parameter_the_app_writes(script: str) -> None:
    text = (BOOTSTRAP_DIR / script).read_text(encoding="utf-8")
    assert f'"$SPINUP_SSM_PREFIX/{parameters.RELEASE}"' in text
    prefix = DeployConfig().ssm_prefix
    assert release_parameter(prefix) == f"{prefix}/{parameters.RELEASE}"


@pytest.mark.parametrize(
    "path",
    ["/opt/spinup/current", "/etc/spinup/bootstrap.env", "/usr/local/lib/spinup"],
)
def test_units_and_bootstrap_agree_on_paths(path: str) -> None:
    bootstrap = (BOOTSTRAP_DIR / "bootstrap.sh").read_text(encoding="utf-8")
    units = "\n".join(p.read_text(encoding="utf-8") for p in SYSTEMD_DIR.iterdir())
    assert path.rsplit("/", 1)[-1] in bootstrap
    assert path in units


def test_the_agent_runs_the_installed_bootstrap() -> None:
    from gpu_host.bootstrap.lifecycle_steps import INITIALIZE_COMMAND

    bootstrap = (BOOTSTRAP_DIR / "bootstrap.sh").read_text(encoding="utf-8")
    assert f"SELF=$FAKE_ROOT{INITIALIZE_COMMAND[0]}" in bootstrap
    assert INITIALIZE_COMMAND[1] == "initialize"


def test_triton_listens_on_loopback_only() -> None:
    argv = docker_run("spinup-triton.service")
    assert argv[argv.index("--network") + 1] == "host"
    for endpoint in ("http", "grpc", "metrics"):
        assert f"--{endpoint}-address=127.0.0.1" in argv
    assert "--grpc-port=8001" in argv
    assert "--publish" not in argv
    assert "-p" not in argv


def test_triton_gets_the_gpu_the_repository_read_only_and_the_engine_cache() -> None:
    argv = docker_run("spinup-triton.service")
    assert argv[argv.index("--gpus") + 1] == "all"
    volumes = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    assert volumes == [
        f"{SHM_DIR}:{SHM_DIR}",
        "/opt/spinup/current/model_repository:/models:ro",
        # Read-write, at the path the generated config.pbtxt names (docs/models.md).
        f"{DEFAULT_ENGINE_CACHE}:{DEFAULT_ENGINE_CACHE}",
    ]
    assert "--model-repository=/models" in argv
    assert "${SPINUP_TRITON_IMAGE}" in argv


@pytest.mark.parametrize("unit", ["spinup-backend.service", "spinup-triton.service"])
def test_backend_and_triton_share_the_hosts_shared_memory(unit: str) -> None:
    """The backend's shared-memory regions (`triton_shm`) are objects in its /dev/shm, which
    Triton opens by name in its own: both containers mount the host's."""
    argv = docker_run(unit)
    volumes = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    assert f"{SHM_DIR}:{SHM_DIR}" in volumes
    assert "--shm-size" not in argv, "a private /dev/shm would hide the backend's regions"
    assert "--ipc" not in argv


def test_initialize_uses_the_engine_cache_the_generator_defaults_to() -> None:
    bootstrap = (BOOTSTRAP_DIR / "bootstrap.sh").read_text(encoding="utf-8")
    assert f"readonly ENGINE_CACHE={DEFAULT_ENGINE_CACHE}\n" in bootstrap


def test_the_nginx_site_goes_where_the_nginx_conf_includes_it() -> None:
    from gpu_host.bootstrap.render_config import RenderSettings

    site = RenderSettings.model_fields["nginx_site"].default
    config = (SYSTEMD_DIR / "spinup-config.service").read_text(encoding="utf-8")
    assert f"SPINUP_NGINX_SITE={site}" in config
    nginx = (BOOTSTRAP_DIR / "nginx.conf").read_text(encoding="utf-8")
    assert f"include {site.parent}/*.conf;" in nginx


def test_the_backend_calls_triton_where_bootstrap_starts_its_http_api() -> None:
    """The port the CDK app gives the backend (`SPINUP_TRITON_URL`) is the one the host's
    Triton unit serves its HTTP API on."""
    unit = (SYSTEMD_DIR / "spinup-triton.service").read_text(encoding="utf-8")
    assert f"--http-address=127.0.0.1 --http-port={DeployConfig().triton_http_port} " in unit


# --- the lifecycle agent: what bootstrap.sh installs for it, and what it may import ---------


def _agent_files() -> list[str]:
    result = _bash(
        f'source "{BOOTSTRAP_DIR / "bootstrap.sh"}"; printf "%s\\n" "${{AGENT_FILES[@]}}"'
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, only for type checking) for every import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for n in ast.walk(node))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in typing_only) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in typing_only))
    return found


def test_the_agent_is_self_contained() -> None:
    """The agent runs on the host's system Python before any release (no venv): it may use
    the standard library, boto3/botocore, and the modules bootstrap.sh copies for it."""
    files = _agent_files()
    modules = {f.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for f in files}
    assert "gpu_host.bootstrap.lifecycle" in modules
    for file in files:
        for module, typing_only in _imports(REPO_ROOT / file):
            top = module.split(".")[0]
            if typing_only and top.startswith("mypy_boto3_"):
                continue
            allowed = (
                top in sys.stdlib_module_names
                or top in {"boto3", "botocore"}
                or module in modules
                or module == "__future__"
            )
            assert allowed, f"{file} imports {module}"


def test_install_agent_copies_what_python3_m_needs(tmp_path: Path) -> None:
    agent = tmp_path / "agent"
    result = _bash(
        f'source "{BOOTSTRAP_DIR / "bootstrap.sh"}"; install_agent "{REPO_ROOT}" "{agent}"'
    )
    assert result.returncode == 0, result.stderr
    probe = (
        f"import sys; sys.path.insert(0, {str(agent)!r}); "
        "import gpu_host.bootstrap.lifecycle as l, gpu_host.bootstrap.launch_hook, "
        "gpu_host.bootstrap.lifecycle_steps; print(l.__file__)"
    )
    loaded = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=False
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip().startswith(str(agent))


def test_the_agent_is_python_3_9(tmp_path: Path) -> None:
    """Amazon Linux 2023's system Python is 3.9: syntax as of 3.9; mypy (which no longer
    targets 3.9) checks the names against 3.10's typeshed, e.g. no enum.StrEnum, no
    datetime.UTC."""
    files = [REPO_ROOT / f for f in _agent_files() if f.endswith(".py")]
    for path in files:
        ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 9))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--python-version",
            "3.10",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
