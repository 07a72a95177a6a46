"""The two boot phases as scripts, offline: `bootstrap.sh initialize` in a fake root, with fake
`aws`, `apt-get` and `docker` whose network steps go to a fake registry that fails twice per
request path and then answers; and a start (the commands of the units spinup.target starts)
against the same fakes, which must not reach the registry at all."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.infra.host.fakes import serving
from tests.infra.host.host_boot_support import BOOTSTRAP_DIR, SYSTEMD_DIR

ASSET_HASH = "b" * 64
RELEASE_URL = f"s3://cdk-assets-123-us-east-1/{ASSET_HASH}.zip"
REPO_ROOT = BOOTSTRAP_DIR.parents[1]
DIGEST = "sha256:" + "c" * 64
# What the scripts may run from the system: everything else is a fake or absent (no nginx,
# so initialize installs it).
SYSTEM_TOOLS = (
    "bash", "sh", "timeout", "install", "python3", "rm", "mv", "ln", "readlink", "ls", "tail",
    "cmp", "chmod", "id", "sleep", "env", "cat", "mkdir", "cp", "touch",
)  # fmt: skip


@dataclass
class FlakyRegistry:
    """Answers 503 to the first `failures` requests of each path, then 200."""

    failures: int = 2
    seen: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def server(self) -> ThreadingHTTPServer:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with registry.lock:
                    registry.seen[self.path] += 1
                    ok = registry.seen[self.path] > registry.failures
                self.send_response(200 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


_NET = """#!/bin/bash
# A network step: one request to the fake registry; fails when it does not answer 200.
echo "net $1" >>"$FAKE_LOG"
exec python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \\
  "$FAKE_REGISTRY/$1" 2>/dev/null
"""
_AWS = """#!/bin/bash
echo "aws $*" >>"$FAKE_LOG"
case "$1 $2" in
"ssm get-parameter") fake-net ssm/get-parameter && echo "$FAKE_RELEASE_URL" ;;
"s3 cp") fake-net s3/release && cp "$FAKE_RELEASE_ZIP" "${@: -1}" ;;
*) exit 2 ;;
esac
"""
_APT = """#!/bin/bash
echo "apt-get $*" >>"$FAKE_LOG"
[[ "$*" == *"-o DPkg::Lock::Timeout="* ]] || { echo "no lock timeout" >&2; exit 3; }
case " $* " in
*" update "*) fake-net apt/update ;;
*" install "*)
  fake-net apt/install || exit 1
  printf '#!/bin/sh\\n' >"$FAKE_BIN/nginx" && chmod +x "$FAKE_BIN/nginx"
  ;;
*) exit 2 ;;
esac
"""
_DOCKER = """#!/bin/bash
echo "docker $*" >>"$FAKE_LOG"
args=" $* "
if [[ $args == *" build "* ]]; then exec fake-net docker/build; fi
if [[ $args == *" compose "* && $args == *" pull "* ]]; then exec fake-net docker/pull; fi
if [[ $args == *" run "* || $args == *" up "* ]]; then
  # Docker pulls a missing image unless told not to.
  [[ $args == *" --pull never "* ]] || exec fake-net docker/implicit-pull
  if [[ $args == *" gpu_host.models.repository "* ]]; then
    while (($#)); do
      if [[ $1 == --volume ]]; then mkdir -p "${2%%:*}/model_repository"; fi
      shift
    done
  fi
  exit 0
fi
[[ $args == *" stop "* ]] && exit 0
exit 2
"""
_SYSTEMCTL = """#!/bin/bash
echo "systemctl $*" >>"$FAKE_LOG"
"""


@dataclass(frozen=True)
class Host:
    root: Path
    env: dict[str, str]
    log: Path
    registry: FlakyRegistry

    def run(
        self, *args: str, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(BOOTSTRAP_DIR / "bootstrap.sh"), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={**self.env, **(extra or {})},
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def _release_zip(path: Path, *, digest: str) -> Path:
    """A release as CDK uploads it (the parts initialize touches), with `digest` pinned."""
    with zipfile.ZipFile(path, "w") as zipped:
        for folder in ("gpu_host/bootstrap", "systemd"):
            for file in sorted((REPO_ROOT / folder).iterdir()):
                if file.is_file() and file.name != "images.env":
                    zipped.write(file, f"{folder}/{file.name}")
        for name in ("gpu_host/__init__.py", "lambdas/__init__.py"):
            zipped.write(REPO_ROOT / name, name)
        images = (BOOTSTRAP_DIR / "images.env").read_text()
        zipped.writestr("gpu_host/bootstrap/images.env", re.sub(r"sha256:0{64}", digest, images))
    return path


def _fake_host(tmp_path: Path, registry: FlakyRegistry, url: str, *, digest: str) -> Host:
    fake_bin, system_bin = tmp_path / "fake-bin", tmp_path / "system-bin"
    fake_bin.mkdir()
    system_bin.mkdir()
    for name, text in {
        "fake-net": _NET,
        "aws": _AWS,
        "apt-get": _APT,
        "docker": _DOCKER,
        "systemctl": _SYSTEMCTL,
    }.items():
        (fake_bin / name).write_text(text)
        (fake_bin / name).chmod(0o755)
    for tool in SYSTEM_TOOLS:
        # The interpreter itself, not a shim (pyenv's need more than this PATH has).
        found: str | None = (
            str(Path(sys.executable).resolve()) if tool == "python3" else shutil.which(tool)
        )
        assert found, tool
        (system_bin / tool).symlink_to(found)
    root = tmp_path / "root"
    for folder in ("etc/spinup", "etc/systemd/system"):
        (root / folder).mkdir(parents=True)
    (root / "etc/spinup/bootstrap.env").write_text(
        "SPINUP_SSM_PREFIX=/spinup/hosts\nAWS_REGION=us-east-1\n"
    )
    log = tmp_path / "calls.log"
    env = {
        "PATH": f"{fake_bin}:{system_bin}",
        "HOME": str(tmp_path),
        "SPINUP_FAKE_ROOT": str(root),
        "SPINUP_RETRY_PAUSE_S": "0",
        "FAKE_BIN": str(fake_bin),
        "FAKE_LOG": str(log),
        "FAKE_REGISTRY": url,
        "FAKE_RELEASE_URL": RELEASE_URL,
        "FAKE_RELEASE_ZIP": str(_release_zip(tmp_path / "release.zip", digest=digest)),
    }
    return Host(root=root, env=env, log=log, registry=registry)


@pytest.fixture
def registry() -> Iterator[tuple[FlakyRegistry, str]]:
    flaky = FlakyRegistry(failures=2)
    server = flaky.server()
    with serving(server):
        yield flaky, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def host(tmp_path: Path, registry: tuple[FlakyRegistry, str]) -> Host:
    return _fake_host(tmp_path, registry[0], registry[1], digest=DIGEST)


NETWORK_STEPS = (
    "/ssm/get-parameter",
    "/apt/update",
    "/apt/install",
    "/s3/release",
    "/docker/build",
    "/docker/pull",
)


def test_initialize_retries_every_network_step_and_succeeds(host: Host) -> None:
    result = host.run("initialize")
    assert result.returncode == 0, result.stderr
    # Every network step failed twice and succeeded at its third try; nothing else went out.
    assert dict(host.registry.seen) == dict.fromkeys(NETWORK_STEPS, 3)
    for what in ("apt-get update", "downloading the release", "building the backend image"):
        assert f"{what} failed (try 2 of 5)" in result.stderr
    release = host.root / "opt/spinup/releases" / ASSET_HASH
    assert (host.root / "opt/spinup/current").resolve() == release
    assert (release / "model_repository").is_dir()
    assert (host.root / "etc/systemd/system/spinup.target").is_file()
    assert (host.root / "usr/local/lib/spinup/gpu_host/bootstrap/lifecycle.py").is_file()
    build = next(c for c in host.calls() if c.startswith("docker build"))
    assert f"PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm@{DIGEST}" in build


def test_initialize_again_downloads_nothing(host: Host) -> None:
    assert host.run("initialize").returncode == 0
    before = sum(host.registry.seen.values())
    again = host.run("initialize")
    assert again.returncode == 0, again.stderr
    # Only the release parameter is read again; the release, images and packages are there.
    assert sum(host.registry.seen.values()) - before == 1
    assert host.registry.seen["/ssm/get-parameter"] == 4


def test_initialize_gives_up_after_its_tries(host: Host) -> None:
    host.registry.failures = 100
    result = host.run("initialize", extra={"SPINUP_RETRY_TRIES": "3"})
    assert result.returncode == 1
    assert "reading the release parameter failed after 3 tries" in result.stderr
    assert host.registry.seen["/ssm/get-parameter"] == 3
    assert not (host.root / "opt/spinup/current").exists()


def test_initialize_refuses_unconfirmed_digests(
    tmp_path: Path, registry: tuple[FlakyRegistry, str]
) -> None:
    host = _fake_host(tmp_path, registry[0], registry[1], digest="sha256:" + "0" * 64)
    result = host.run("initialize")
    assert result.returncode == 1
    assert "is not confirmed yet" in result.stderr
    assert "/docker/build" not in host.registry.seen


def test_a_try_past_its_time_limit_is_killed_and_tried_again(host: Host, tmp_path: Path) -> None:
    flag = tmp_path / "first-try"
    script = (
        f'source "{BOOTSTRAP_DIR / "bootstrap.sh"}"; '
        f"retry 'a slow step' bash -c '[ -e {flag} ] || {{ touch {flag}; sleep 60; }}'"
    )
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={**host.env, "SPINUP_RETRY_TRY_LIMIT_S": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "a slow step failed (try 1 of 5)" in result.stderr


# --- start: the commands of the units spinup.target starts --------------------------------


def _start_commands() -> list[str]:
    target = (SYSTEMD_DIR / "spinup.target").read_text()
    units = [
        u for line in target.splitlines() if line.startswith("Wants=") for u in line[6:].split()
    ]
    units += ["spinup-watchdog.service"]  # started by the target's timer
    commands = []
    for unit in units:
        path = SYSTEMD_DIR / unit
        if not path.exists():  # nginx.service is the distro's
            continue
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key in {"ExecStartPre", "ExecStart", "ExecStartPost", "ExecStop", "ExecStopPost"}:
                commands.append(value.lstrip("+-!@"))
    return commands


def test_start_never_calls_out(host: Host) -> None:
    commands = _start_commands()
    assert any("render_config" in c for c in commands)
    assert sum(" up " in c for c in commands) == 2  # Triton and the backend
    fake_bin = host.env["FAKE_BIN"]
    for command in commands:
        local = command.replace("/usr/bin/docker", f"{fake_bin}/docker")
        local = local.replace("/usr/bin/systemctl", f"{fake_bin}/systemctl")
        result = subprocess.run(
            ["bash", "-c", local],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
            env={**host.env, "SPINUP_BACKEND_IMAGE": "spinup-backend:release", "EXIT_STATUS": "0"},
        )
        assert result.returncode == 0, (command, result.stderr)
    assert not host.registry.seen, dict(host.registry.seen)
    docker_calls = [c for c in host.calls() if c.startswith("docker ")]
    assert len(docker_calls) == sum("/usr/bin/docker" in c for c in commands)
    for call in docker_calls:
        assert not re.search(r" (pull|build|push|login) ", f" {call} "), call


def test_no_unit_of_the_start_runs_a_network_tool() -> None:
    for command in _start_commands():
        program = command.split()[0]
        assert os.path.basename(program) not in {"apt-get", "pip", "aws", "curl", "wget"}
        assert "spinup-bootstrap" not in command
