"""A ``streamlit run app.py`` server for the benchmarks that talk to one over the wire."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    tmp: Path, default_size: str, port: int | None = None, **extra_env: str
) -> tuple[subprocess.Popen, str]:
    """A server on loopback with its own run, cache and data folders under ``tmp`` and the default
    dataset at ``default_size`` (``port``: a given one, e.g. to start it again on the same address;
    ``extra_env``: more settings); returns (process, base URL) once /_stcore/health answers ok."""
    port = port or free_port()
    env = dict(
        os.environ,
        DIGITLAB_RUN_ROOT=str(tmp / "runs"),
        DIGITLAB_CACHE_DIR=str(tmp / "cache"),
        DIGITLAB_DATA_DIR=str(tmp / "data"),
        DIGITLAB_DEFAULT_SIZE=default_size,
        **extra_env,
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")
