"""End to end: the whole local system (`python -m infra.local`) driven by headless Chromium."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from gpu_host.models.spec import BUILTIN_SPECS
from infra.local.ports import free_port
from tests.e2e.y4m import write_y4m
from tests.support.hermetic import clean_environ
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
STARTUP_TIMEOUT_S = 60.0
READY_TIMEOUT_MS = 120_000
"""From Start to the host's `ready` phase: an emulated host boots Triton and the backend."""
RESULTS_TIMEOUT_MS = 60_000
"""From `ready` to the results a test waits for."""
STOP_TIMEOUT_MS = 60_000
"""From Stop (or page load) to the `stopped` phase."""


def _font(size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
    return ImageFont.truetype(str(ttf), size)


@dataclass(frozen=True)
class LocalSystem:
    url: str
    run_dir: Path
    backend_port: int
    process: subprocess.Popen[bytes]
    log_path: Path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def text_camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake camera that shows large printed words on a light background."""
    frame = Image.new("RGB", (640, 480), (235, 235, 230))
    draw = ImageDraw.Draw(frame)
    draw.text((60, 140), "SPINUP", font=_font(110), fill=(15, 15, 15))
    draw.text((80, 300), "GPU 2026", font=_font(80), fill=(15, 15, 15))
    return write_y4m(tmp_path_factory.mktemp("camera") / "text.y4m", [frame] * 4)


PRINTED_WORD = "SPINUP"


@pytest.fixture(scope="session")
def person_camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake camera showing a real photograph of a person (Grace Hopper, shipped inside
    matplotlib) beside a printed word."""
    import matplotlib

    photo_path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photo = Image.open(photo_path).convert("RGB")
    photo = photo.resize((int(photo.width * 480 / photo.height), 480))
    frame = Image.new("RGB", (640, 480), (240, 240, 236))
    frame.paste(photo, (0, 0))
    draw = ImageDraw.Draw(frame)
    draw.text((photo.width + 8, 200), PRINTED_WORD, font=_font(44), fill=(10, 10, 10))
    return write_y4m(tmp_path_factory.mktemp("camera") / "person.y4m", [frame] * 4)


@contextlib.contextmanager
def running_local_system(run_dir: Path, **settings: str) -> Iterator[LocalSystem]:
    """`python -m infra.local` on free ports, with extra `SPINUP_*` settings; stopped with
    Ctrl-C (SIGINT) as a person would."""
    ui_port = free_port()
    backend_port = free_port()
    # Only the settings given here: none the person running the tests exported, and no model
    # of the checkout's gpu_host/models/user/.
    env = clean_environ(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        SPINUP_LOCAL_UI_PORT=str(ui_port),
        SPINUP_LOCAL_BACKEND_PORT=str(backend_port),
        SPINUP_LOCAL_TRITON_HTTP_PORT=str(free_port()),
        SPINUP_LOCAL_TRITON_GRPC_PORT=str(free_port()),
        SPINUP_LOCAL_TRITON_METRICS_PORT=str(free_port()),
        SPINUP_LOCAL_MOTO_PORT=str(free_port()),
        SPINUP_LOCAL_RUN_DIR=str(run_dir),
        SPINUP_LOCAL_USER_MODELS=str(run_dir / "no-user-models" / "user_models.json"),
        SPINUP_LOCAL_RECONCILE_INTERVAL_S="1",
        SPINUP_LOCAL_AGENT_POLL_S="0.5",
        **settings,
    )
    log_path = run_dir / "local.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.local"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{ui_port}/"

    def config_status() -> int:
        if proc.poll() is not None:
            pytest.fail(f"local mode exited with {proc.returncode}:\n{log_path.read_text()}")
        return httpx.get(url + "config.json", timeout=1).status_code

    try:
        try:
            eventually(
                config_status,
                lambda status: status == 200,
                what=f"local mode serves {url}config.json",
                timeout_s=STARTUP_TIMEOUT_S,
                interval_s=0.3,
                ignoring=(httpx.HTTPError,),
            )
        except AssertionError as never:
            pytest.fail(f"{never}:\n{log_path.read_text()}")
        yield LocalSystem(
            url=url, run_dir=run_dir, backend_port=backend_port, process=proc, log_path=log_path
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def local_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    """The local system with a short release grace, so that Stop is quick, and a backend that
    refuses sign-in token hellos as a deployment does: the browser must stream on tickets."""
    with running_local_system(
        tmp_path_factory.mktemp("local-run"),
        SPINUP_RELEASE_GRACE_S="1",
        SPINUP_LOCAL_REQUIRE_TICKETS="true",
    ) as system:
        yield system


CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Module scope: the sync API runs an event loop in this thread until it exits, which
    # would break any asyncio test collected after this module.
    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def browser_with_camera(playwright: Playwright) -> Iterator[Callable[[Path], Browser]]:
    """Launch headless Chromium whose fake camera plays the given Y4M file."""
    launched: list[Browser] = []

    def launch(camera: Path) -> Browser:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"],
        )
        launched.append(browser)
        return browser

    yield launch
    for browser in launched:
        browser.close()


ALL_MODELS = tuple(BUILTIN_SPECS)
"""Every model the UI offers a checkbox for (`#model-<name>`): the built-in ones."""


def choose_models(page: Page, models: tuple[str, ...]) -> None:
    """Tick exactly `models` in the UI's model list, as a person would."""
    for name in ALL_MODELS:
        page.locator(f"#model-{name}").set_checked(name in models)


def through(page: Page) -> Callable[[float], object]:
    """A pause for `eventually` that waits through the page, so that Playwright keeps
    delivering its events (socket frames, console messages) while a test polls."""
    return lambda seconds: page.wait_for_timeout(seconds * 1000)


def host_processes(system: LocalSystem) -> list[str]:
    """Command lines of the emulated instance's live processes: Triton and the backend."""
    found = []
    markers = (str(system.run_dir).encode(), f"--port\0{system.backend_port}".encode())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if any(m in cmdline for m in markers) and entry.name != str(os.getpid()):
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found
