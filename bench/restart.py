"""Runs outlive the dashboard: restart the server while three runs train, and count what finishes.

As ``make run`` sets it up: the lab's own Ray started apart (``tools/lab_ray.py``: loopback,
the lab's token), the
dashboard (``streamlit run serve.py``) joined to it through DIGITLAB_RAY_ADDRESS. Three runs of
several epochs are queued; once each has charted two epochs the server is killed (SIGKILL: a crash,
the harshest restart) and started again on the same address. A page is opened in Chromium after
each start (a server dispatches once a session runs). Then the runs are waited for; a run counts as
finished when it ends "finished" with every epoch it was configured for and its model file.
Last line: ``restart: <n> runs in flight, server restarted, <k> finished, <f> lost`` (goal: k = n, f = 0).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.server_support import free_port, start_server

ROOT = Path(__file__).resolve().parents[1]

RUNS, EPOCHS = 3, 8
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def open_page(url: str) -> None:
    """One session on the server (its dispatcher starts with the first session's Lab)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"{url}/runs")
        page.wait_for_selector("h1:has-text('Runs')", timeout=120_000)
        browser.close()


def wait(what, timeout: float, say: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {say}")
        time.sleep(0.5)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="digitlab-bench-restart-"))
    ray_port = free_port()
    # The servers get cache = work/cache (start_server): the Ray's token file is made there too.
    os.environ.update(
        {
            "DIGITLAB_RUN_ROOT": str(work / "runs"),
            "DIGITLAB_CACHE_DIR": str(work / "cache"),
            "DIGITLAB_DATA_DIR": str(work / "data"),
            "DIGITLAB_RAY_CPUS": str(RUNS),
        }
    )
    from tools import lab_ray as ray_local

    ray_local.start(ray_port)
    settings = {
        "DIGITLAB_RAY_ADDRESS": f"127.0.0.1:{ray_port}",
        "DIGITLAB_MAX_JOBS": str(RUNS),
        "DIGITLAB_WARM_UP": "0",
    }
    from core.runs.store import RunStore
    from core.training.config import RunConfig

    store = RunStore(work / "runs")
    config = RunConfig.build("default:small", "raw", "H", {"epochs": EPOCHS, "early_stop": None})
    ids = [store.create(config, owner="code:bench").id for _ in range(RUNS)]
    server, url = start_server(work, "tiny", **settings)
    port = int(url.rsplit(":", 1)[1])
    try:
        open_page(url)
        wait(lambda: all(len(store.history(i)) >= 2 for i in ids), 600, "every run charting two epochs")
        in_flight = sum(store.get(i).status == "running" for i in ids)
        epochs_at_kill = {i: len(store.history(i)) for i in ids}
        server.send_signal(signal.SIGKILL)
        server.wait()
        print(f"server killed with {in_flight} runs in flight at epochs {sorted(epochs_at_kill.values())}")
        server, url = start_server(work, "tiny", port=port, **settings)
        open_page(url)
        wait(lambda: not any(store.get(i).active for i in ids), 900, "every run ending")
        finished = 0
        for i in ids:
            run = store.get(i)
            whole = run.status == "finished" and len(store.history(i)) == EPOCHS and store.model_path(i).is_file()
            finished += whole
            print(
                f"{i}: {run.status}, {len(store.history(i))} epochs, model {'kept' if whole else 'missing'}"
                + (f" ({run.error})" if run.error else "")
            )
    finally:
        server.kill()
        ray_local.stop(ray_port)  # this Ray only: `ray stop` would end every Ray here
    print(f"restart: {in_flight} runs in flight, server restarted, {finished} finished, {in_flight - finished} lost")


if __name__ == "__main__":
    main()
