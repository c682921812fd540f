"""Background training jobs: the run store is the queue, and a dispatcher starts worker processes.

A :class:`JobQueue` submits runs (status "queued") and, on each :meth:`JobQueue.dispatch`, claims
queued runs while fewer than ``max_jobs`` run, starting one ``python -m core.worker`` process per
run. The dashboard keeps one queue with a background thread (:meth:`JobQueue.start`); the CLI
dispatches in its foreground loop (:meth:`JobQueue.wait`). Claims are atomic in SQLite, so any
number of dispatchers in any number of processes together respect ``max_jobs``. Workers run in
their own session: a closed browser tab, a page change or a Ctrl-C in a terminal never kills one.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from core.limits import limits
from core.run_config import RunConfig
from core.runs import QUEUED, RUNNING, Run, RunStore
from core.settings import settings

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Starts the worker for a claimed run: (run id, store root) -> process.
Launcher = Callable[[str, Path], subprocess.Popen]


def launch_worker(run_id: str, root: Path) -> subprocess.Popen:
    """Start ``python -m core.worker <run_id> --root <root>`` with output to the run's worker.log.

    The worker keeps this process's working directory and environment (relative DIGITLAB_*
    paths mean the same to both) and finds ``core`` through PYTHONPATH.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(root / run_id / "worker.log", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "core.worker", run_id, "--root", str(Path(root).resolve())],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


class JobQueue:
    """Submit, stop and dispatch training runs of ``store`` with at most ``max_jobs`` at once."""

    def __init__(self, store: RunStore, max_jobs: int | None = None, launcher: Launcher = launch_worker,
                 interval: float = 0.5) -> None:
        self.store = store
        self.max_jobs = max(1, max_jobs if max_jobs is not None else settings().max_jobs)
        self.launcher = launcher
        self.interval = interval
        self._children: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._submit_lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, config: RunConfig) -> str:
        """Queue a run and start it at once if a slot is free; return its id.

        The instance's limits (core.limits) are checked first: too many epochs, too big a model or
        a full queue raise DigitLabError and queue nothing.
        """
        with self._submit_lock:  # one check-then-create at a time, so the queue limit holds here
            self.check_limits([config])
            run = self.store.create(config)
        self.dispatch()
        return run.id

    def check_limits(self, configs: Sequence[RunConfig]) -> None:
        """Raise DigitLabError unless the instance's limits (core.limits) allow queueing ``configs``
        now: each one's epochs and model size, and how many runs would then wait for a slot.

        ``submit`` calls it; whoever queues several runs through the store (an experiment grid)
        calls it first, so a grid cannot go around the queue limit.
        """
        allowed = limits()
        for config in configs:
            allowed.check_config(config)
        if allowed.max_queue is not None:
            runs = self.store.list()
            waiting = sum(r.status == QUEUED for r in runs)
            free = self.max_jobs - sum(r.status == RUNNING for r in runs)
            allowed.check_queue(waiting, free, adding=len(configs))

    def stop(self, run_id: str) -> Run:
        """Cancel a queued run, or ask a running one to stop (its worker obeys within a second)."""
        return self.store.request_stop(run_id)

    def queue(self) -> list[Run]:
        """Queued runs in start order; each has ``queue_position`` from 1."""
        return self.store.queued()

    def dispatch(self) -> list[str]:
        """One round: notice ended workers, then start queued runs while slots are free.

        Returns the ids started.
        """
        with self._lock:
            self._reap_children()
            started = []
            # Our live workers go with the claim: one still exiting after closing its run keeps its
            # slot (it holds its memory and CPU until TensorFlow has torn down, seconds).
            while (run := self.store.claim_next(self.max_jobs, workers=self._children)) is not None:
                try:
                    proc = self.launcher(run.id, self.store.root)
                except OSError as err:
                    self.store.fail(run.id, f"could not start the worker: {err}")
                    continue
                self._children[run.id] = proc
                self.store.set_pid(run.id, proc.pid)
                started.append(run.id)
            return started

    def start(self) -> "JobQueue":
        """Dispatch every ``interval`` seconds in a daemon thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._halt.clear()
            self._thread = threading.Thread(target=self._loop, name="digitlab-dispatcher", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the dispatcher thread (running workers carry on)."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait(self, run_id: str, on_poll: Callable[[Run], None] | None = None, poll: float = 0.2,
             timeout: float | None = None) -> Run:
        """Dispatch in the foreground until ``run_id`` ends; ``on_poll(run)`` after each look."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.dispatch()
            run = self.store.get(run_id)
            if on_poll is not None:
                on_poll(run)
            if not run.active or (deadline is not None and time.monotonic() > deadline):
                return run
            time.sleep(poll)

    def _loop(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.dispatch()
            except Exception:  # a locked or vanished store must not kill the dispatcher
                log.exception("dispatch failed")

    def _reap_children(self) -> None:
        """Collect our ended workers; fail any run whose worker exited without closing it."""
        for run_id, proc in list(self._children.items()):
            code = proc.poll()
            if code is None:
                continue
            del self._children[run_id]
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            tail = self.store.log_tail(run_id)
            self.store.fail(run_id, f"the worker {how} before finishing" + (f": {tail}" if tail else ""))
