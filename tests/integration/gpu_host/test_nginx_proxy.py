"""The deployed nginx origin site, run by the real nginx in front of the real backend.

CloudFront reaches the instance over plain HTTP with its secret `X-Origin-Verify` header
(see docs/operations.md for why not TLS to an EC2 name); nginx admits only that header and
only the public paths.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from gpu_host.backend.worker_header import HEADER
from gpu_host.bootstrap.render_config import TEMPLATE, render_nginx_site
from infra.local.ports import free_port
from tests.integration.gpu_host.dataplane_support import (
    RunningBackend,
    TextImage,
    TokenIssuer,
    frame,
    recv_json,
    say_hello,
    unique_user,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.triton

SECRET = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def standalone_conf(prefix: Path, site: Path) -> Path:
    """A main nginx.conf that keeps pid, logs and temp files inside `prefix` (no root)."""
    temp = "\n".join(
        f"  {kind}_temp_path {prefix}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"daemon off;\nmaster_process off;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n{temp}\n  include {site};\n}}\n"
    )
    return conf


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def origin(backend: RunningBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx with the rendered site in front of the backend; yields host:port."""
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    site = prefix / "spinup.conf"
    site.write_text(
        render_nginx_site(
            TEMPLATE.read_text(),
            origin_port=port,
            origin_secret=SECRET,
            backend=f"127.0.0.1:{backend.port}",
        )
    )
    conf = standalone_conf(prefix, site)
    check = subprocess.run(
        [NGINX, "-t", "-q", "-c", str(conf), "-p", f"{prefix}/"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", f"{prefix}/"])

    def nginx_listens() -> bool:
        assert proc.poll() is None, (prefix / "error.log").read_text()
        return listening(port)

    try:
        eventually(nginx_listens, what=f"nginx listens on {port}")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(origin: str, path: str, *, secret: str | None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://{origin}{path}")
    if secret is not None:
        request.add_header("X-Origin-Verify", secret)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def test_websocket_round_trip_with_the_secret_header(
    origin: str, token_issuer: TokenIssuer, text_image: TextImage
) -> None:
    async with websockets.connect(
        f"ws://{origin}/ws/inference", additional_headers={"X-Origin-Verify": SECRET}
    ) as ws:
        assert ws.response is not None
        assert HEADER not in ws.response.headers, "which worker answered stays on the host"
        ready = await say_hello(ws, token_issuer.token(unique_user()), ["text"])
        assert ready["type"] == "ready"
        await ws.send(frame(1, text_image.jpeg))
        result = await recv_json(ws)
    assert result["type"] == "result"
    assert result["detections"]


def test_the_worker_header_stays_on_the_host(origin: str, backend: RunningBackend) -> None:
    request = urllib.request.Request(f"http://{origin}/health/ready")
    request.add_header("X-Origin-Verify", SECRET)
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers[HEADER] is None
    with urllib.request.urlopen(f"{backend.http_url}/health/ready", timeout=5) as direct:
        assert direct.headers[HEADER] == str(os.getpid()), "the backend does send it"


@pytest.mark.parametrize("secret", [None, "wrong" + SECRET[5:]], ids=["none", "wrong"])
async def test_websocket_without_the_secret_is_403(origin: str, secret: str | None) -> None:
    headers = {"X-Origin-Verify": secret} if secret else {}
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"ws://{origin}/ws/inference", additional_headers=headers):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("path", "secret", "status"),
    [
        ("/health", SECRET, 200),
        ("/health/ready", SECRET, 200),
        ("/health", None, 403),
        ("/health", "wrong" + SECRET[5:], 403),
        ("/metrics", SECRET, 404),
        ("/metrics", None, 403),
        ("/anything", SECRET, 404),
    ],
)
def test_only_cloudfront_and_only_public_paths(
    origin: str, path: str, secret: str | None, status: int
) -> None:
    got, body = get(origin, path, secret=secret)
    assert got == status, body
