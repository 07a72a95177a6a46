"""The rendered nginx site, run by the real nginx in front of the real backend."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dataplane_support import (
    RunningBackend,
    TextImage,
    TokenIssuer,
    frame,
    free_port,
    recv_json,
    say_hello,
    unique_user,
)

from gpu_host.nginx.render import SiteParams, render_site, render_standalone

pytestmark = [
    pytest.mark.triton,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]

SECRET = "cloudfront-origin-secret-0123456789"


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass(frozen=True)
class Nginx:
    https_port: int
    http_port: int
    tls: ssl.SSLContext

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}/ws/inference"

    def get(
        self, path: str, *, secret: str | None = SECRET, https: bool = True
    ) -> tuple[int, str, dict[str, str]]:
        scheme, port = ("https", self.https_port) if https else ("http", self.http_port)
        request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}")
        if secret is not None:
            request.add_header("X-Origin-Verify", secret)
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.tls), _NoRedirect()
        )
        try:
            with opener.open(request, timeout=5) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "nginx died"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nginx not listening on {port}")


@pytest.fixture(scope="module")
def nginx(backend: RunningBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    prefix = tmp_path_factory.mktemp("nginx")
    (prefix / "temp").mkdir()
    cert, key = self_signed(prefix)
    params = SiteParams(
        cert_path=cert,
        key_path=key,
        origin_secret=SECRET,
        backend=f"127.0.0.1:{backend.port}",
        http_port=free_port(),
        https_port=free_port(),
    )
    site = prefix / "spinup.conf"
    site.write_text(render_site(params))
    conf = prefix / "nginx.conf"
    conf.write_text(render_standalone(site_path=site, prefix=prefix))
    subprocess.run(
        ["nginx", "-t", "-q", "-c", str(conf), "-p", f"{prefix}/"], check=True, capture_output=True
    )
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", f"{prefix}/"], stderr=subprocess.PIPE)
    try:
        wait_for_port(params.https_port, proc)
        wait_for_port(params.http_port, proc)
        tls = ssl.create_default_context(cafile=str(cert))
        yield Nginx(https_port=params.https_port, http_port=params.http_port, tls=tls)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_websocket_through_tls_with_the_secret_header(
    nginx: Nginx, token_issuer: TokenIssuer, text_image: TextImage
) -> None:
    async with websockets.connect(
        nginx.wss_url, ssl=nginx.tls, additional_headers={"X-Origin-Verify": SECRET}
    ) as ws:
        ready = await say_hello(ws, token_issuer.token(unique_user()))
        assert ready["type"] == "ready"
        await ws.send(frame(1, text_image.jpeg))
        result = await recv_json(ws)
    assert result["type"] == "result"
    assert result["detections"]


@pytest.mark.parametrize("secret", [None, "wrong-secret-value-0123456789"], ids=["none", "wrong"])
async def test_websocket_without_the_secret_is_403(nginx: Nginx, secret: str | None) -> None:
    headers = {"X-Origin-Verify": secret} if secret else {}
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(nginx.wss_url, ssl=nginx.tls, additional_headers=headers):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("path", "secret", "https", "status"),
    [
        ("/health", SECRET, True, 200),
        ("/health/ready", SECRET, True, 200),
        ("/health", None, True, 403),
        ("/metrics", SECRET, True, 404),
        ("/metrics", None, True, 403),
        ("/anything", SECRET, True, 404),
        ("/health", SECRET, False, 200),
        ("/health", None, False, 403),
        ("/ws/inference", SECRET, False, 301),
    ],
)
def test_http_routes(nginx: Nginx, path: str, secret: str | None, https: bool, status: int) -> None:
    got, body, headers = nginx.get(path, secret=secret, https=https)
    assert got == status, body
    if status == 301:
        assert headers["Location"] == f"https://127.0.0.1{path}"
    if path == "/health" and status == 200:
        assert body == '{"status":"ok"}'
    assert "nginx/" not in headers.get("Server", ""), "server_tokens off"
