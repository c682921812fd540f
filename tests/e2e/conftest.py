"""A real `streamlit run serve.py` server and Debian's headless chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("streamlit did not answer its health endpoint")


def stop_server(proc: subprocess.Popen, grace: float = 15) -> None:
    """End a server a fixture started: SIGTERM, then SIGKILL after ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()


def lab_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a server with its own run, cache and data folders under ``tmp``.

    The server starts a Ray of its own, as the image does (never the test process's, whose
    address ``ray_session`` puts in this process's environment). No training worker is warmed at
    start (``DIGITLAB_WARM_UP=0``, unless ``extra`` says otherwise): most of these servers never
    train, and one that does starts its worker at its first run instead (tests/test_serve.py
    checks the warm-up itself)."""
    return {
        **{key: value for key, value in os.environ.items() if key != "DIGITLAB_RAY_ADDRESS"},
        "DIGITLAB_RUN_ROOT": str(tmp / "runs"),
        "DIGITLAB_CACHE_DIR": str(tmp / "cache"),
        "DIGITLAB_DATA_DIR": str(tmp / "data"),
        "DIGITLAB_DEFAULT_SIZE": "tiny",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "DIGITLAB_WARM_UP": "0",
        **extra,
    }


@contextmanager
def folders_of(env: Mapping[str, str]) -> Iterator[None]:
    """This process uses ``env``'s run, cache and data folders (to fill a store before a server starts)."""
    with pytest.MonkeyPatch.context() as mp:
        for key in ("DIGITLAB_RUN_ROOT", "DIGITLAB_CACHE_DIR", "DIGITLAB_DATA_DIR"):
            mp.setenv(key, env[key])
        yield


@contextmanager
def streamlit_server(
    tmp: Path, env: Mapping[str, str], port: int | None = None, host: str = "127.0.0.1"
) -> Iterator[str]:
    """`streamlit run serve.py` on loopback with ``env``, its log in ``tmp``; yields its base URL
    (``host`` names the machine in it), then ends the server."""
    port = _free_port() if port is None else port
    with open(tmp / "streamlit.log", "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "serve.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", proc)
            yield f"http://{host}:{port}"
        finally:
            stop_server(proc)


def lab_folder(tmp_path_factory, name: str) -> Path:
    """A new folder ``name`` for a server's files; skips the test where there is no chromium."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    return tmp_path_factory.mktemp(name)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> str:
    """Base URL of a streamlit server on loopback with its own run, cache and data folders."""
    tmp = lab_folder(tmp_path_factory, "e2e")
    with streamlit_server(tmp, lab_env(tmp)) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()


def screenshot(pg, name: str) -> Path:
    """Save a full-page screenshot as a test artefact under artifacts/screenshots/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path
