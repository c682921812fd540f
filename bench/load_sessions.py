"""How page renders slow down when many sessions use one server (no training, so it runs in ~1 min).

Starts ``streamlit run serve.py`` on loopback (tiny default dataset, private folders), then renders
the Data and Train pages over Streamlit's websocket protocol (tests/st_wire.py): ``ROUNDS`` times
with one session (the baseline), then ``ROUNDS`` times in each of ``SESSIONS`` concurrent
sessions. Prints median render times, their ratio, and the server's memory per session.

    .venv/bin/python bench/load_sessions.py [sessions]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.server_support import start_server
from tests.st_wire import WireSession

ROUNDS = 5
PAGES = ("", "train")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def renders(url: str, times: list[float], start: threading.Barrier | None = None) -> None:
    """``ROUNDS`` rounds of every page in one session; render seconds appended to ``times``."""
    with WireSession(url, timeout=120) as session:
        if start is not None:
            start.wait(timeout=60)
        for _ in range(ROUNDS):
            for page in PAGES:
                times.append(session.run(page).seconds)


def main(sessions: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp), "tiny")
        try:
            renders(url, [])  # warm-up: imports and the default dataset
            rss_before = rss_mb(proc.pid)
            alone: list[float] = []
            renders(url, alone)
            together: list[float] = []
            start = threading.Barrier(sessions)
            threads = [threading.Thread(target=renders, args=(url, together, start)) for _ in range(sessions)]
            began = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - began
            rss_after = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    one, many = statistics.median(alone), statistics.median(together)
    print(f"1 session: median render {one * 1000:.0f} ms ({len(alone)} renders)")
    print(
        f"{sessions} sessions: median render {many * 1000:.0f} ms, slowest {max(together):.2f} s, "
        f"{len(together)} renders in {wall:.1f} s ({len(together) / wall:.1f} per s)"
    )
    print(
        f"server RSS {rss_before:.0f} -> {rss_after:.0f} MB ({(rss_after - rss_before) / sessions:.1f} MB per session)"
    )
    print(f"render slowdown with {sessions} concurrent sessions: x{many / one:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
