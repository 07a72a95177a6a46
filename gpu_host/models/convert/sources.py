"""Fetching pinned packages with the registries' own clients, and the TensorFlow venv."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TF_PINS = (
    "tensorflow-cpu==2.15.1",
    "tf2onnx==1.16.1",
    "onnx==1.16.2",
    "protobuf==3.20.3",
    "numpy==1.26.4",
)
"""The combination of TensorFlow and tf2onnx that works on Python 3.11: tf2onnx 1.16 pins
protobuf 3.20, which TensorFlow 2.16 and later no longer accept."""


@dataclass(frozen=True)
class Package:
    registry: str  # "pypi" | "npm"
    name: str
    version: str
    pip_platform: str | None = None
    """Fetch the wheel built for this platform, whatever machine runs the script."""

    @property
    def spec(self) -> str:
        if self.registry == "pypi":
            return f"{self.name}=={self.version}"
        return f"{self.name}@{self.version}"

    def matches(self, archive: Path) -> bool:
        """Whether `archive` is this package's download (wheel or npm tarball)."""
        stem = self.name.lstrip("@").replace("/", "-").replace("-", "_").lower()
        name = archive.name.replace("-", "_").lower()
        return name.startswith(stem) and f"_{self.version}" in name


def run(cmd: Sequence[str | Path]) -> None:
    """Run a command; a fixed hash seed makes tf2onnx name and order tensors reproducibly."""
    log.info("$ %s", " ".join(str(c) for c in cmd))
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run([str(c) for c in cmd], check=True, env=env)


def ensure_tf_venv(venv: Path) -> Path:
    """A venv with TensorFlow and tf2onnx, made once and reused; returns its python."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import tensorflow, tf2onnx"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    run([sys.executable, "-m", "venv", "--clear", venv])
    run([python, "-m", "pip", "install", "--quiet", *TF_PINS])
    return python


def fetch(package: Package, dest: Path) -> Path:
    """The package's archive (no dependencies) in `dest`, downloaded unless already there."""
    dest.mkdir(parents=True, exist_ok=True)
    found = [p for p in dest.iterdir() if package.matches(p)]
    if not found:
        if package.registry == "pypi":
            cmd: list[str | Path] = [sys.executable, "-m", "pip", "download", "--no-deps"]
            if package.pip_platform:
                cmd += ["--only-binary=:all:", "--platform", package.pip_platform]
                cmd += ["--python-version", "3.11"]
            run([*cmd, "--dest", dest, package.spec])
        elif package.registry == "npm":
            run(["npm", "pack", package.spec, "--pack-destination", dest])
        else:
            raise ValueError(f"unknown registry {package.registry!r}")
        found = [p for p in dest.iterdir() if package.matches(p)]
    if len(found) != 1:
        raise RuntimeError(f"expected one archive of {package.spec} in {dest}, found {found}")
    return found[0]


def read_member(archive: Path, member: str) -> bytes:
    """One file's bytes from a wheel (zip) or an npm tarball."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive) as tf:
        src = tf.extractfile(member)
        if src is None:
            raise RuntimeError(f"{member} is not a regular file in {archive}")
        with src:
            return src.read()


def extract(archive: Path, member: str, dest: Path) -> Path:
    """Copy one file out of an archive into `dest`; returns its path."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / Path(member).name
    target.write_bytes(read_member(archive, member))
    return target


def copy(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
