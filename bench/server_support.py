"""A ``streamlit run serve.py`` server for the benchmarks that talk to one over the wire."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

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
    proc = launch(env, port)
    url = f"http://127.0.0.1:{port}"
    if not healthy(url, proc):
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, url


def launch(env: dict[str, str], port: int, log: IO[bytes] | None = None) -> subprocess.Popen:
    """``streamlit run serve.py`` headless on 127.0.0.1:``port`` with ``env`` (no usage stats, no file
    watcher); its output to ``log`` (default: discarded)."""
    command = ["streamlit", "run", "serve.py", "--server.headless", "true", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]
    out = log if log is not None else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", *command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def healthy(url: str, proc: subprocess.Popen, seconds: float = 90) -> bool:
    """Wait until the server at ``url`` answers /_stcore/health with ok; False if it ended or the
    time ran out first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return True
        except OSError:
            time.sleep(0.1)
    return False


def end(proc: subprocess.Popen | None, grace: float = 15) -> None:
    """Stop a server: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
