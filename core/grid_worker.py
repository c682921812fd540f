"""A worker that trains several runs of one grid in turn: ``python -m core.grid_worker <run id> --root <root>``.

Each worker process spends seconds importing TensorFlow before it trains anything, which on
small grids costs more than the training. This worker trains its claimed run like
``core.worker``; then, if that run belongs to a grid and the head of the queue is the same
grid's next run, it takes that run over in the same transaction that keeps the slot (see
``RunStore.hand_over``) and trains it too, and so on. Queue order and max_jobs hold exactly as
with one process per run; a run of another grid, or none, at the head of the queue ends the
chain, and the dispatchers start the rest as usual. Runs without a grid train alone, so this
worker can serve every run (``JobQueue(store, launcher=launch_chaining_worker)``).

The chain ends after a failed run (a fresh process is the safer place for what follows), on
SIGTERM or SIGINT (which stops the current run, as in core.worker), and after
``MAX_RUNS_PER_PROCESS`` runs, which bounds what many Keras sessions may leak in one process.
Each run's output goes to its own worker.log.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from core.errors import DigitLabError
from core.jobs import PROJECT_ROOT
from core.runs import FAILED, FINISHED, STOPPED, RunStore
from core.worker import run_job

MAX_RUNS_PER_PROCESS = 50


class HandOverStore(RunStore):
    """A run store that, when the current run finishes, first takes over the grid's next run.

    Taking over before closing keeps the slot occupied throughout, so no dispatcher starts a
    process for that run in between.
    """

    def __init__(self, root: str | os.PathLike[str], stop_event: threading.Event,
                 budget: int = MAX_RUNS_PER_PROCESS) -> None:
        super().__init__(root)
        self.stop_event = stop_event
        self.budget = budget
        self.grid: str | None = None
        self.next_run: str | None = None

    def finish(self, run_id: str, status: str, metrics: dict[str, Any]) -> None:
        if (status in (FINISHED, STOPPED) and self.grid is not None and self.next_run is None
                and self.budget > 1 and not self.stop_event.is_set()):
            taken = self.hand_over(run_id, self.grid)
            self.next_run = taken.id if taken is not None else None
        super().finish(run_id, status, metrics)

    def take_next(self) -> str | None:
        """The run taken over while finishing the last one (and forget it), or None."""
        run_id, self.next_run = self.next_run, None
        self.budget -= 1
        return run_id


def train_chain(store: HandOverStore, run_id: str) -> list[tuple[str, str]]:
    """Train ``run_id`` and the runs handed over after it; return (run id, final status) pairs."""
    done: list[tuple[str, str]] = []
    current: str | None = run_id
    while current is not None:
        if done:
            _redirect_output(store.folder(current) / "worker.log")
        store.set_pid(current, os.getpid())
        store.grid = store.get(current).grid
        status = run_job(store, current, store.stop_event)
        print(f"run {current}: {status}", file=sys.stderr, flush=True)
        done.append((current, status))
        current = store.take_next()
    return done


def launch_chaining_worker(run_id: str, root: Path) -> subprocess.Popen:
    """Start ``python -m core.grid_worker <run_id> --root <root>``, as core.jobs.launch_worker
    starts core.worker (same environment, output to the run's worker.log, own session)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(Path(root) / run_id / "worker.log", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "core.grid_worker", run_id, "--root", str(Path(root).resolve())],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.grid_worker",
                                     description="train one claimed run, then the grid's next queued runs")
    parser.add_argument("run_id")
    parser.add_argument("--root", required=True, help="the run store's root folder")
    args = parser.parse_args(argv)
    stop_event = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_event.set())
    try:
        done = train_chain(HandOverStore(args.root, stop_event), args.run_id)
    except DigitLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if done[-1][1] == FAILED else 0


def _redirect_output(path: Path) -> None:
    """Send this process's stdout and stderr (TensorFlow's C++ logs too) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
