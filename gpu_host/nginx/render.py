"""Render the nginx site (and, for tests and local runs, a standalone nginx.conf around it).

    python -m gpu_host.nginx.render --cert C --key K --origin-secret-file F --out SITE.conf

The secret is read from a file so that it never shows up in a process list.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from string import Template

SECRET_PATTERN = re.compile(r"[A-Za-z0-9_\-]{16,256}")
"""The secret lands inside a quoted nginx string: allow only characters that need no escape."""

HOSTPORT_PATTERN = re.compile(r"[A-Za-z0-9.\-\[\]:]+:\d+")
SERVER_NAME_PATTERN = re.compile(r"[A-Za-z0-9.\-_*]+")


@dataclass(frozen=True, slots=True)
class SiteParams:
    cert_path: Path
    key_path: Path
    origin_secret: str
    backend: str = "127.0.0.1:8080"
    server_name: str = "_"
    http_port: int = 80
    https_port: int = 443
    ws_timeout_s: int = 3600

    def __post_init__(self) -> None:
        if not SECRET_PATTERN.fullmatch(self.origin_secret):
            raise ValueError("origin secret must be 16-256 characters of [A-Za-z0-9_-]")
        if not HOSTPORT_PATTERN.fullmatch(self.backend):
            raise ValueError(f"backend must be host:port, got {self.backend!r}")
        if not SERVER_NAME_PATTERN.fullmatch(self.server_name):
            raise ValueError(f"bad server_name {self.server_name!r}")
        for port in (self.http_port, self.https_port):
            if not 0 < port < 65536:
                raise ValueError(f"bad port {port}")
        for path in (self.cert_path, self.key_path):
            if not path.is_absolute() or any(c in str(path) for c in ' ;"{}$'):
                raise ValueError(f"certificate paths must be absolute and plain: {path}")


def _template(name: str) -> Template:
    return Template((resources.files("gpu_host.nginx") / name).read_text())


def render_site(params: SiteParams) -> str:
    return _template("spinup.conf.template").substitute(
        {k: str(v) for k, v in asdict(params).items()}
    )


def render_standalone(*, site_path: Path, prefix: Path) -> str:
    """A full nginx.conf including `site_path`, with pid, logs and temp files under `prefix`."""
    return _template("standalone.conf.template").substitute(
        site_path=str(site_path), prefix=str(prefix)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Render Spinup's nginx site")
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--origin-secret-file", type=Path, required=True)
    parser.add_argument("--backend", default="127.0.0.1:8080")
    parser.add_argument("--server-name", default="_")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = SiteParams(
        cert_path=args.cert,
        key_path=args.key,
        origin_secret=args.origin_secret_file.read_text().strip(),
        backend=args.backend,
        server_name=args.server_name,
    )
    args.out.write_text(render_site(params))


if __name__ == "__main__":
    main()
