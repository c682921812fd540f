"""The worker process: ``python -m core.worker <run id> --root <run root>`` trains one claimed run.

It runs outside the dashboard (see core.jobs), writes progress and epochs to the run store, saves
the artifacts, then closes the run as finished, stopped or failed. SIGTERM or SIGINT stops it
like a user's stop request: the current epoch is abandoned and the model so far is kept.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from typing import Any

from core.errors import DigitLabError
from core.runs import EPOCH_PREDICTIONS_NAME, FAILED, PREDICTIONS_NAME, RUNNING, RunStore


class StoreReporter:
    """Training reporter that writes to the run store and reads its stop flag on each write.

    ``stop_event`` (set by a signal handler) also counts as a stop request.
    """

    def __init__(self, store: RunStore, run_id: str, stop_event: threading.Event | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.stop_event = stop_event
        self._flag = False

    def progress(self, state: dict[str, Any]) -> None:
        self._flag = self.store.update_progress(self.run_id, state) or self._flag

    def epoch_end(self, event: dict[str, Any]) -> None:
        self._flag = self.store.add_epoch(self.run_id, event) or self._flag

    def stop_requested(self) -> bool:
        return self._flag or (self.stop_event is not None and self.stop_event.is_set())


def run_job(store: RunStore, run_id: str, stop_event: threading.Event | None = None) -> str:
    """Train the running run ``run_id`` in this process and close it; return its final status.

    Errors never escape: a DigitLabError (bad dataset, bad pipeline) fails the run with its
    message, anything else with the exception's type and message (the traceback goes to stderr,
    which the dispatcher sends to the run's worker.log).
    """
    from core.training import train  # imports TensorFlow

    run = store.get(run_id)
    if run.status != RUNNING:
        raise DigitLabError(f"run {run_id} is {run.status}, not running")
    try:
        if run.config is None:
            raise DigitLabError(run.problem or "the run has no readable config")
        reporter = StoreReporter(store, run_id, stop_event)
        outcome = train(run.config, reporter)
        reporter.progress({"phase": "saving"})
        if outcome.model is not None:
            store.save_model(run_id, outcome.model)
        if outcome.test_probabilities is not None:
            store.save_array(run_id, PREDICTIONS_NAME, outcome.test_probabilities)
        if outcome.test_probabilities_by_epoch is not None:
            store.save_array(run_id, EPOCH_PREDICTIONS_NAME, outcome.test_probabilities_by_epoch)
        store.finish(run_id, outcome.status, outcome.metrics)
        return outcome.status
    except DigitLabError as err:
        store.fail(run_id, str(err))
    except Exception as err:  # the run must end as failed, whatever went wrong
        traceback.print_exc()
        store.fail(run_id, f"{type(err).__name__}: {err}")
    return FAILED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.worker", description="train one claimed run")
    parser.add_argument("run_id")
    parser.add_argument("--root", required=True, help="the run store's root folder")
    args = parser.parse_args(argv)
    stop_event = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_event.set())
    try:
        store = RunStore(args.root)
        # The dispatcher records our pid too; doing it here covers a dispatcher that died after spawning us.
        store.set_pid(args.run_id, os.getpid())
        status = run_job(store, args.run_id, stop_event)
    except DigitLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"run {args.run_id}: {status}", file=sys.stderr)
    return 1 if status == FAILED else 0


def exit_now(code: int) -> None:
    """Exit without the interpreter's teardown. The run is closed and its files renamed into
    place by then; TensorFlow's teardown would add 3-5 s of CPU (measured under load) during
    which the worker still holds its queue slot and its memory."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
