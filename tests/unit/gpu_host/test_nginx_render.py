"""Rendering the nginx site template (the real nginx runs it in the integration tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpu_host.nginx.render import SiteParams, render_site, render_standalone

SECRET = "cloudfront-origin-secret-0123456789"


def params(**change: object) -> SiteParams:
    values: dict[str, object] = {
        "cert_path": Path("/etc/ssl/c.pem"),
        "key_path": Path("/etc/ssl/k.pem"),
        "origin_secret": SECRET,
    }
    values.update(change)
    return SiteParams(**values)  # type: ignore[arg-type]


def test_site_has_every_value_and_nginx_variables_intact() -> None:
    site = render_site(params(backend="127.0.0.1:8080"))
    assert "${" not in site
    assert "$$" not in site
    assert f'"{SECRET}" 1;' in site
    assert "server 127.0.0.1:8080;" in site
    assert "listen 80;" in site
    assert "listen 443 ssl;" in site
    assert "ssl_certificate /etc/ssl/c.pem;" in site
    assert "$http_upgrade" in site
    assert "$http_x_origin_verify" in site


def test_websocket_location_is_set_up_for_long_lived_upgrades() -> None:
    site = render_site(params(ws_timeout_s=7200))
    ws = re.search(r"location /ws/ \{(.*?)\n    \}", site, re.S)
    assert ws is not None
    block = ws.group(1)
    for directive in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $spinup_connection;",
        "proxy_read_timeout 7200s;",
        'proxy_set_header X-Origin-Verify "";',
    ):
        assert directive in block, directive


def test_standalone_keeps_everything_under_the_prefix(tmp_path: Path) -> None:
    conf = render_standalone(site_path=tmp_path / "site.conf", prefix=tmp_path)
    for directive in ("pid", "error_log", "access_log", "proxy_temp_path"):
        (line,) = [ln for ln in conf.splitlines() if ln.strip().startswith(directive + " ")]
        assert str(tmp_path) in line, line
    assert f"include {tmp_path / 'site.conf'};" in conf


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"origin_secret": "short"}, "origin secret"),
        ({"origin_secret": 'has"quote-0123456789'}, "origin secret"),
        ({"origin_secret": "has space 0123456789"}, "origin secret"),
        ({"backend": "127.0.0.1"}, "host:port"),
        ({"backend": "127.0.0.1:80; evil"}, "host:port"),
        ({"server_name": "a b"}, "server_name"),
        ({"cert_path": Path("relative.pem")}, "absolute"),
        ({"key_path": Path("/etc/ssl/k;.pem")}, "plain"),
        ({"https_port": 0}, "bad port"),
        ({"http_port": 70000}, "bad port"),
    ],
)
def test_render_refuses_unsafe_values(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        params(**change)
