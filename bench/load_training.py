"""Twenty students at once: one server on loopback, twenty sessions, twenty trainings.

    .venv/bin/python bench/load_training.py [sessions]

Each session (a :class:`tests.st_wire.WireSession`, Streamlit's own websocket protocol) opens the
Data page on the tiny default dataset, starts a one-epoch training from the Train page and then
behaves like its browser tab: the live-run fragment reruns every second until the run ends. A
sampler watches the run store and the Ray workers training meanwhile. The job queue must hold
(never more than ``MAX_JOBS`` trainings at once), every run must finish, no session may see an
exception, and the server's memory must stay bounded (a failed check exits 1). The figures land in
``artifacts/load_test.json``; the last line reads
``load: <n> sessions, <f> of <n> runs finished, at most <j> training at once, server grew <m> MB``.
(A benchmark rather than a test: it trains twenty times for real, 1.5 minutes of the suite.)
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.server_support import ROOT, end, free_port, healthy, launch
from core.runs.store import FINISHED, QUEUED, RUNNING, RunStore
from tests.st_wire import Render, WireSession, fetch

SESSIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
MAX_JOBS = 2
DEADLINE_S = 420  # the whole load, generous on two cores shared with other work
MAX_RENDERS = 400  # per session: a bound on its request loop whatever the clock says
RUN_ID = re.compile(r"\*\*Run ([0-9a-f]{8})\*\*")
FIT_RESULT = "## FIT RESULT ##"
#: Memory the server may gain over the whole load (twenty sessions' state, media, caches).
RSS_GROWTH_BOUND_MB = 800


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field_name)


def training_workers(run_ids: set[str]) -> int:
    """Ray worker processes training one of ``run_ids`` now (Ray titles a busy worker
    ``ray::<task name>``, and the queue names training tasks ``train:<run id>``)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if title.startswith("ray::train:") and title.removeprefix("ray::train:").strip()[:8] in run_ids:
            count += 1
    return count


@dataclass
class Sample:
    max_running: int = 0
    max_queued: int = 0
    max_workers: int = 0
    peak_rss_mb: float = 0.0
    samples: int = 0


class Sampler(threading.Thread):
    """Every quarter second: running and queued runs in the store, Ray workers training, server RSS."""

    def __init__(self, root: Path, server_pid: int) -> None:
        super().__init__(daemon=True)
        self.store, self.pid = RunStore(root), server_pid
        self.result, self.halt = Sample(), threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.25):
            runs = self.store.list()
            statuses = [r.status for r in runs]
            r = self.result
            r.max_running = max(r.max_running, statuses.count(RUNNING))
            r.max_queued = max(r.max_queued, statuses.count(QUEUED))
            r.max_workers = max(r.max_workers, training_workers({run.id for run in runs}))
            r.peak_rss_mb = max(r.peak_rss_mb, rss_mb(self.pid))
            r.samples += 1


@dataclass
class SessionReport:
    index: int
    run_id: str | None = None
    renders: int = 0
    exceptions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    saw_fit_result: bool = False
    seconds: float = 0.0
    slowest_render_s: float = 0.0
    failure: str | None = None


def _seen(report: SessionReport, render: Render) -> Render:
    report.renders += 1
    report.exceptions += render.exceptions
    report.errors += render.errors
    report.slowest_render_s = max(report.slowest_render_s, render.seconds)
    return render


def student(url: str, index: int, start: threading.Barrier, deadline: float) -> SessionReport:
    """One browser tab: Data page, Train page, one-epoch run, follow it until it ends."""
    report, began = SessionReport(index), time.monotonic()
    try:
        start.wait(timeout=60)
        with WireSession(url, timeout=120) as tab:
            data = _seen(report, tab.run())
            assert data.metric("Train images") == "600", data.metric("Train images")
            for image in data.of("imgs")[:3]:  # the gallery's pictures, as the browser fetches them
                assert fetch(url, image.proto.imgs[0].url)[0] == 200
            train = _seen(report, tab.run("train"))
            tab.set(train.widget("number_input", "Epochs"), 1)
            render = _seen(report, tab.click(train.widget("button", "Train")))
            found = RUN_ID.findall(" ".join(e.text for e in render.elements))
            assert found, "the Train page shows no followed run after clicking Train"
            report.run_id = found[0]
            while report.renders < MAX_RENDERS and time.monotonic() < deadline:
                if any(FIT_RESULT in e.text for e in render.of("code")):
                    report.saw_fit_result = True
                    break
                time.sleep(1.0)
                fragment = next(iter(tab.fragments), None)
                render = _seen(report, tab.run_fragment(fragment) if fragment else tab.run())
    except Exception as err:  # reported per session, asserted below with the others
        report.failure = f"{type(err).__name__}: {err}"
    report.seconds = time.monotonic() - began
    return report


@contextmanager
def lab(tmp: Path):
    """A server on loopback with its own folders under ``tmp`` and ``MAX_JOBS`` training slots."""
    port = free_port()
    env = dict(
        os.environ,
        DIGITLAB_RUN_ROOT=str(tmp / "runs"),
        DIGITLAB_CACHE_DIR=str(tmp / "cache"),
        DIGITLAB_DATA_DIR=str(tmp / "data"),
        DIGITLAB_DEFAULT_SIZE="tiny",
        DIGITLAB_MAX_JOBS=str(MAX_JOBS),
        DIGITLAB_RAY_CPUS=str(MAX_JOBS),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.pop("DIGITLAB_RAY_ADDRESS", None)  # the server starts its own local Ray, as `make run` does
    log = open(tmp / "streamlit.log", "wb")
    proc = launch(env, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        if not healthy(url, proc):
            raise SystemExit("the server did not start: " + (tmp / "streamlit.log").read_text(errors="replace")[-2000:])
        yield url, proc.pid, tmp / "runs", tmp / "streamlit.log"
    finally:
        end(proc, 20)
        log.close()


def main() -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="digitlab-load-") as tmp, lab(Path(tmp)) as server:
        return measure(*server)


def measure(url: str, pid: int, root: Path, log: Path) -> int:
    """Run the sessions against the server at ``url`` (process ``pid``); 0 if every check held."""
    rss_idle = rss_mb(pid)
    with WireSession(url, timeout=120) as warm:  # imports and the default dataset, once
        warm.run()
        warm.run("train")
    rss_warm = rss_mb(pid)

    sampler = Sampler(root, pid)
    sampler.start()
    began = time.monotonic()
    deadline = began + DEADLINE_S
    start = threading.Barrier(SESSIONS)
    reports: list[SessionReport] = [SessionReport(i) for i in range(SESSIONS)]

    def run(i: int) -> None:
        reports[i] = student(url, i, start, deadline)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE_S + 60)
    wall = time.monotonic() - began
    time.sleep(3)  # let closed sessions go
    sampler.halt.set()
    sampler.join()
    rss_after = rss_mb(pid)

    runs = RunStore(root).list()
    figures = {
        "sessions": SESSIONS,
        "max_jobs": MAX_JOBS,
        "runs": len(runs),
        "finished": sum(r.status == FINISHED for r in runs),
        "wall_s": round(wall, 1),
        "max_running_sampled": sampler.result.max_running,
        "max_queued_sampled": sampler.result.max_queued,
        "max_worker_processes": sampler.result.max_workers,
        "samples": sampler.result.samples,
        "rss_idle_mb": round(rss_idle),
        "rss_warm_mb": round(rss_warm),
        "rss_peak_mb": round(sampler.result.peak_rss_mb),
        "rss_after_mb": round(rss_after),
        "vm_hwm_mb": round(rss_mb(pid, "VmHWM")),
        "renders": sum(r.renders for r in reports),
        "slowest_render_s": round(max(r.slowest_render_s for r in reports), 2),
        "session_s_min_max": [round(min(r.seconds for r in reports), 1), round(max(r.seconds for r in reports), 1)],
    }
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "load_test.json").write_text(
        json.dumps({"figures": figures, "sessions": [asdict(r) for r in reports]}, indent=2)
    )
    print("load figures:", json.dumps(figures))

    checks = {
        "a session failed": [(r.index, r.failure) for r in reports if r.failure],
        "a session saw an exception": [(r.index, r.exceptions) for r in reports if r.exceptions],
        "a session saw an error": [(r.index, r.errors) for r in reports if r.errors],
        # Every session got its own run, and every run finished and was shown finished to its session.
        "not one run per session": len({r.run_id for r in reports}) != SESSIONS
        or {r.id for r in runs} != {r.run_id for r in reports},
        "a run did not finish": [(r.id, r.status, r.error) for r in runs if r.status != FINISHED],
        "a session never saw its result": [r.index for r in reports if not r.saw_fit_result],
        # The queue held: never more trainings than slots, and the slots were used (others waited).
        "more trainings than slots": figures["max_running_sampled"] > MAX_JOBS
        or figures["max_worker_processes"] > MAX_JOBS,
        "the slots were not all used": figures["max_running_sampled"] != MAX_JOBS
        or figures["max_queued_sampled"] < SESSIONS - MAX_JOBS - 2,
        "the server's memory grew past its bound": rss_after - rss_warm >= RSS_GROWTH_BOUND_MB,
    }
    broken = {name: found for name, found in checks.items() if found}
    for name, found in broken.items():
        print(f"FAILED: {name}: {found}")
    if broken:
        print(log.read_text(errors="replace")[-3000:])
    print(
        f"load: {SESSIONS} sessions, {figures['finished']} of {SESSIONS} runs finished, at most "
        f"{figures['max_running_sampled']} training at once, server grew {round(rss_after - rss_warm)} MB"
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
