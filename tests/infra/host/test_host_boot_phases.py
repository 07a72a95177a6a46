"""The two boot phases as scripts, offline: `bootstrap.sh initialize` in a fake root, with fake
`aws`, `dnf` (or `apt-get`), `nvidia-smi`, `systemctl` and `docker` whose network steps go to a
fake registry that fails twice per request path and then answers (the fake docker records
every command, and its verification writes the decision a test gives it); and a start (the
commands of the units spinup.target starts) against the same fakes, which must not reach the
registry at all."""

from __future__ import annotations

import json
import os
import re
import shlex
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
from typing import Any

import pytest

from tests.infra.host.fakes import ReadyServer, serving
from tests.infra.host.host_boot_support import (
    BOOTSTRAP_DIR,
    SYSTEMD_DIR,
    docker_run,
    exec_lines,
    images,
)

ASSET_HASH = "b" * 64
RELEASE_URL = f"s3://cdk-assets-123-us-east-1/{ASSET_HASH}.zip"
REPO_ROOT = BOOTSTRAP_DIR.parents[1]
DIGEST = "sha256:" + "c" * 64
# What the scripts may run from the system: everything else is a fake or absent (no nginx,
# so initialize installs it).
SYSTEM_TOOLS = (
    "bash", "sh", "timeout", "install", "python3", "rm", "mv", "ln", "readlink", "ls", "tail",
    "sha256sum", "chmod", "id", "sleep", "env", "cat", "mkdir", "cp", "touch", "printf",
)  # fmt: skip
GPU = "NVIDIA A10G, 8.6"
ENGINE_CACHE = "/var/lib/spinup/trt-engines"
MODELS = ("detect", "face", "ocr", "pose", "text")


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
*" update "*) fake-net pkg/metadata ;;
*" install "*) fake-net pkg/install && fake-installed "$@" ;;
*) exit 2 ;;
esac
"""
_DNF = """#!/bin/bash
echo "dnf $*" >>"$FAKE_LOG"
case " $* " in
*" makecache "*) fake-net pkg/metadata ;;
*" install "*) fake-net pkg/install && fake-installed "$@" ;;
*) exit 2 ;;
esac
"""
_INSTALLED = """#!/bin/bash
# The packages a fake package manager installed: nginx becomes a command.
nginx=$FAKE_BIN/nginx
for name; do
  [[ $name != nginx ]] || { printf '#!/bin/sh\\n' >"$nginx" && chmod +x "$nginx"; }
done
"""
_NVIDIA_SMI = """#!/bin/bash
echo "nvidia-smi $*" >>"$FAKE_LOG"
echo "$FAKE_GPU"
"""
_DOCKER = """#!/bin/bash
{ printf docker && printf ' %q' "$@" && echo; } >>"$FAKE_LOG"  # a line shlex can split
args=" $* "
case "$1" in
build) exec fake-net docker/build ;;
pull) exec fake-net docker/pull ;;
stop | rm | logs) exit 0 ;;
container) [[ -z ${FAKE_TRITON_DIED:-} ]] ;;
run)
  # Docker pulls a missing image unless told not to.
  [[ $args == *" --pull never "* ]] || exec fake-net docker/implicit-pull
  volumes=()
  while (($#)); do
    if [[ $1 == --volume ]]; then volumes+=("$2"); fi
    shift
  done
  if [[ $args == *" gpu_host.models.repository "* ]]; then
    for volume in "${volumes[@]}"; do
      if [[ ${volume#*:} == /release ]]; then mkdir -p "${volume%%:*}/model_repository"; fi
    done
  fi
  if [[ $args == *" gpu_host.models.verify "* ]]; then
    # Round N of the verification writes line N of FAKE_DECISIONS (the last one after that).
    echo x >>"$FAKE_BIN/verify-rounds"
    round=$(wc -l <"$FAKE_BIN/verify-rounds")
    decision=$(sed -n "${round}p" "$FAKE_DECISIONS")
    [[ -n $decision ]] || decision=$(tail -n 1 "$FAKE_DECISIONS")
    [[ $decision != unreachable ]] || exit 1
    for volume in "${volumes[@]}"; do
      [[ ${volume#*:} != /var/lib/spinup ]] || echo "$decision" >"${volume%%:*}/precisions.json"
    done
    [[ $decision == *'"failing": []'* ]]
    exit
  fi
  exit 0
  ;;
esac
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
    decisions: Path

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

    def decide(self, *rounds: dict[str, object] | str) -> None:
        """What the fake verification decides, round by round (a str: no decision at all)."""
        lines = [r if isinstance(r, str) else json.dumps(r) for r in rounds]
        self.decisions.write_text("\n".join(lines) + "\n")


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


def decision(fell_back: tuple[str, ...] = (), failing: tuple[str, ...] = ()) -> dict[str, object]:
    """A verification's decision file (gpu_host.models.verify --decide)."""
    precisions = {m: "FP32" if m in {"pose", "text", *fell_back} else "FP16" for m in MODELS}
    return {"precisions": precisions, "fell_back": list(fell_back), "failing": list(failing)}


def _fake_host(
    tmp_path: Path,
    registry: FlakyRegistry,
    url: str,
    *,
    digest: str,
    triton_ready_url: str,
    packages: str = "dnf",
) -> Host:
    fake_bin, system_bin = tmp_path / "fake-bin", tmp_path / "system-bin"
    fake_bin.mkdir()
    system_bin.mkdir()
    for name, text in {
        "fake-net": _NET,
        "fake-installed": _INSTALLED,
        "aws": _AWS,
        packages: _DNF if packages == "dnf" else _APT,
        "nvidia-smi": _NVIDIA_SMI,
        "docker": _DOCKER,
        "systemctl": _SYSTEMCTL,
    }.items():
        (fake_bin / name).write_text(text)
        (fake_bin / name).chmod(0o755)
    for tool in (*SYSTEM_TOOLS, "wc", "sed"):
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
    if packages == "apt-get":  # Debian's layout: the default site in sites-enabled
        (root / "etc/nginx/sites-enabled").mkdir(parents=True)
        (root / "etc/nginx/sites-enabled/default").touch()
    log = tmp_path / "calls.log"
    decisions = tmp_path / "decisions.jsonl"
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
        "FAKE_GPU": GPU,
        "FAKE_DECISIONS": str(decisions),
        "SPINUP_TRITON_READY_URL": triton_ready_url,
        "SPINUP_TRITON_POLL_S": "0",
    }
    host = Host(root=root, env=env, log=log, registry=registry, decisions=decisions)
    host.decide(decision())
    return host


@pytest.fixture
def registry() -> Iterator[tuple[FlakyRegistry, str]]:
    flaky = FlakyRegistry(failures=2)
    server = flaky.server()
    with serving(server):
        yield flaky, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def triton() -> Iterator[ReadyServer]:
    """Triton's readiness endpoint during initialize (ready at once)."""
    server = ReadyServer(path="/v2/health/ready")
    server.ready.set()
    with serving(server.server):
        yield server


@pytest.fixture(params=["dnf", "apt-get"])
def host(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    registry: tuple[FlakyRegistry, str],
    triton: ReadyServer,
) -> Host:
    return _fake_host(
        tmp_path,
        registry[0],
        registry[1],
        digest=DIGEST,
        triton_ready_url=triton.url,
        packages=request.param,
    )


@pytest.fixture
def al2023(tmp_path: Path, registry: tuple[FlakyRegistry, str], triton: ReadyServer) -> Host:
    return _fake_host(
        tmp_path, registry[0], registry[1], digest=DIGEST, triton_ready_url=triton.url
    )


NETWORK_STEPS = (
    "/ssm/get-parameter",
    "/pkg/metadata",
    "/pkg/install",
    "/s3/release",
    "/docker/build",
    "/docker/pull",
)


def test_initialize_retries_every_network_step_and_succeeds(host: Host) -> None:
    result = host.run("initialize")
    assert result.returncode == 0, result.stderr
    # Every network step failed twice and succeeded at its third try; nothing else went out.
    assert dict(host.registry.seen) == dict.fromkeys(NETWORK_STEPS, 3)
    for what in (
        "refreshing the package metadata",
        "installing nginx",
        "downloading the release",
        "building the backend image",
        "pulling the Triton image",
    ):
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
    tmp_path: Path, registry: tuple[FlakyRegistry, str], triton: ReadyServer
) -> None:
    host = _fake_host(
        tmp_path, registry[0], registry[1], digest="sha256:" + "0" * 64, triton_ready_url=triton.url
    )
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


def _docker_runs(host: Host) -> list[list[str]]:
    return [shlex.split(c)[2:] for c in host.calls() if c.startswith("docker run ")]


def _kind(argv: list[str]) -> str:
    for kind in ("gpu_host.models.repository", "gpu_host.models.verify", "tritonserver"):
        if kind in argv:
            return kind.rsplit(".", 1)[-1]
    return "other"


def test_initialize_builds_and_verifies_the_engines_once(al2023: Host) -> None:
    result = al2023.run("initialize")
    assert result.returncode == 0, result.stderr
    runs = _docker_runs(al2023)
    assert [_kind(r) for r in runs] == ["repository", "tritonserver", "verify"]
    repository, triton, verify = runs
    assert repository[repository.index("--gpu") + 1] == GPU
    assert repository[repository.index("--engine-cache") + 1] == ENGINE_CACHE
    assert "--precisions" not in repository
    # Triton gets the GPU and the engine cache read-write at the path config.pbtxt names.
    assert triton[triton.index("--gpus") + 1] == "all"
    host_cache = f"{al2023.root}{ENGINE_CACHE}"
    assert f"{host_cache}:{ENGINE_CACHE}" in triton
    assert (al2023.root / ENGINE_CACHE.lstrip("/")).is_dir()
    assert verify[verify.index("--url") + 1] == "127.0.0.1:8001"
    assert verify[verify.index("--decide") + 1] == "/var/lib/spinup/precisions.json"
    assert f"{al2023.root}/var/lib/spinup:/var/lib/spinup" in verify
    # Triton is stopped again: a warm-pool instance is stopped, a start runs the unit.
    calls = al2023.calls()
    verified = max(i for i, c in enumerate(calls) if "gpu_host.models.verify" in c)
    assert any(c.startswith("docker stop") and "spinup-triton-init" in c for c in calls[verified:])
    decided = json.loads((al2023.root / "var/lib/spinup/precisions.json").read_text())
    assert decided == decision()


def test_a_model_off_in_fp16_is_regenerated_in_fp32_and_verified_again(al2023: Host) -> None:
    al2023.decide(decision(fell_back=("detect",)), decision(fell_back=()))
    result = al2023.run("initialize")
    assert result.returncode == 0, result.stderr
    kinds = [_kind(r) for r in _docker_runs(al2023)]
    assert kinds == ["repository", "tritonserver", "verify"] * 2
    regenerate = _docker_runs(al2023)[3]
    assert regenerate[regenerate.index("--precisions") + 1] == "/var/lib/spinup/precisions.json"
    assert "off in FP16, regenerated in FP32: detect" in result.stderr


def test_a_model_failing_even_in_fp32_is_logged_and_initialize_goes_on(al2023: Host) -> None:
    al2023.decide(decision(failing=("ocr",)))
    result = al2023.run("initialize")
    assert result.returncode == 0, result.stderr
    assert "failing the verification (served as they are): ocr" in result.stderr
    assert (al2023.root / "opt/spinup/current").is_symlink()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"decide": "unreachable"}, "the verification decided nothing"),
        ({"env": {"FAKE_TRITON_DIED": "1"}}, "Triton exited while loading the models"),
    ],
)
def test_initialize_fails_when_the_engines_cannot_be_verified(
    tmp_path: Path,
    registry: tuple[FlakyRegistry, str],
    setup: dict[str, Any],
    message: str,
) -> None:
    never_ready = ReadyServer(path="/v2/health/ready")  # not set: 503
    with serving(never_ready.server):
        host = _fake_host(
            tmp_path, registry[0], registry[1], digest=DIGEST, triton_ready_url=never_ready.url
        )
        if "decide" in setup:
            # Triton answers; the verification cannot reach it.
            never_ready.ready.set()
            host.decide(setup["decide"])
        result = host.run("initialize", extra={**setup.get("env", {}), "SPINUP_RETRY_TRIES": "3"})
    assert result.returncode == 1
    assert message in result.stderr
    assert not (host.root / "opt/spinup/current").exists()
    # Triton is not left running.
    assert any(c.startswith("docker stop") and "spinup-triton-init" in c for c in host.calls())


def test_initialize_runs_triton_as_its_unit_does(al2023: Host) -> None:
    assert al2023.run("initialize").returncode == 0
    (triton,) = [r for r in _docker_runs(al2023) if _kind(r) == "tritonserver"]
    unit = docker_run("spinup-triton.service")[2:]
    images = {"${SPINUP_TRITON_IMAGE}": "nvcr.io/nvidia/tritonserver:25.10-py3@" + DIGEST}
    release = f"{al2023.root}/opt/spinup/releases/{ASSET_HASH}.partial"
    expected = [images.get(a, a) for a in unit]
    expected = [
        a.replace("/opt/spinup/current/", f"{release}/").replace(
            f"{ENGINE_CACHE}:", f"{al2023.root}{ENGINE_CACHE}:"
        )
        for a in expected
    ]
    expected[expected.index("spinup-triton")] = "spinup-triton-init"
    # Every model loads at initialize (verified, engines built); the unit loads none itself.
    assert "--model-control-mode=explicit" in unit
    assert triton == ["--detach", *expected, "--load-model=*"]


def test_initialize_prepares_amazon_linux(al2023: Host) -> None:
    result = al2023.run("initialize")
    assert result.returncode == 0, result.stderr
    calls = al2023.calls()
    assert "systemctl disable --now ecs.service" in calls
    assert any(c.startswith("dnf -q -y install") and c.endswith(" nginx") for c in calls)
    journald = al2023.root / "etc/systemd/journald.conf.d/spinup.conf"
    assert re.search(r"^SystemMaxUse=\d+[MG]$", journald.read_text(), re.MULTILINE)
    assert "systemctl restart systemd-journald.service" in calls
    nginx = (al2023.root / "etc/nginx/nginx.conf").read_text()
    assert "include /etc/nginx/conf.d/*.conf;" in nginx
    assert "listen" not in nginx  # no server of its own


def test_initialize_on_debian_keeps_its_nginx_conf(tmp_path: Path, host: Host) -> None:
    assert host.run("initialize").returncode == 0
    if (host.root / "etc/nginx/sites-enabled").is_dir():  # the apt-get host
        assert not (host.root / "etc/nginx/sites-enabled/default").exists()
        assert not (host.root / "etc/nginx/nginx.conf").exists()


# --- start: the commands of the units spinup.target starts --------------------------------


def _start_commands() -> list[str]:
    target = (SYSTEMD_DIR / "spinup.target").read_text()
    units = [
        u for line in target.splitlines() if line.startswith("Wants=") for u in line[6:].split()
    ]
    units += ["spinup-watchdog.service"]  # started by the target's timer
    commands = []
    for unit in units:
        if (SYSTEMD_DIR / unit).exists():  # nginx.service is the distro's
            commands += exec_lines(unit)
    return commands


def test_start_never_calls_out(al2023: Host) -> None:
    host = al2023
    commands = _start_commands()
    assert any("render_config" in c for c in commands)
    for name in ("spinup-triton", "spinup-backend", "spinup-watchdog"):
        assert sum(f"docker run --rm --name {name} " in c for c in commands) == 1
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
            env={**host.env, **images(), "EXIT_STATUS": "0"},
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
