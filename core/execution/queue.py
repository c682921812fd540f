"""Background training on Ray: the run store is the queue, and a dispatcher feeds Ray from it.

A :class:`JobQueue` submits runs (status "queued") and, on each :meth:`JobQueue.dispatch`:
writes what running tasks reported (core.execution.worker.RunEvents) into the run store, closes runs whose
task ended (writing the model and predictions it returned into the run folder), forces stops that
were not obeyed in time, and claims queued runs, fair share across owners, while slots are free,
submitting each as a Ray task. The dashboard keeps one queue with a background thread
(:meth:`JobQueue.start`); the CLI dispatches in its foreground loop (:meth:`JobQueue.wait`).
Claims are atomic in SQLite, so every dispatcher on a machine (server and CLIs) shares the slots.

Fault policy: a run whose worker process dies or whose node is lost ends **failed** with the
reason; it is never retried (a retry would repeat epochs already reported). A dispatcher that
ends (server restart) leaves its running runs to be failed by the next one, with that reason.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import (GetTimeoutError, NodeDiedError, OwnerDiedError, RayError, RayTaskError,
                            TaskCancelledError, WorkerCrashedError)

from core.execution import cluster, warmup
from core.errors import DigitLabError
from core.classroom.limits import limits
from core.training.config import RunConfig
from core.runs.store import (EPOCH_PREDICTIONS_NAME, FAILED, PREDICTIONS_NAME, QUEUED, RUNNING, STOPPED,
                       Run, RunStore, atomic_write_bytes)
from core.settings import settings
from core.execution.worker import dataset_payload, run_events, train_task

log = logging.getLogger(__name__)

#: Seconds a running run has to obey a stop request before its worker is ended.
STOP_GRACE_S = 1.2
#: Starts the Ray task of a claimed run: (run, the RunEvents actor) -> ObjectRef of its result.
Launcher = Callable[[Run, Any], Any]


def launch_training(run: Run, events: Any, resources: dict[str, float] | None = None) -> Any:
    """Submit ``run`` as a Ray task with ``DIGITLAB_CPUS_PER_RUN`` CPUs (and custom ``resources``,
    which place it on nodes that have them). The task gets the config, not the run folder; an
    uploaded dataset's file goes along as bytes (the node may be another machine)."""
    if run.config is None:
        raise DigitLabError(run.problem or "the run has no readable config")
    cpus = settings().cpus_per_run
    warmup.wait_for_warm_up()  # the first run after a start takes the worker being warmed
    payload = dataset_payload(run.config.dataset)
    upload = ray.put(payload) if payload is not None else None
    return train_task.options(num_cpus=cpus, resources=resources or {}, name=f"train:{run.id}").remote(
        run.id, run.config.to_dict(), events, upload, cpus)


@dataclass
class _Flight:
    """A run this dispatcher submitted: its result's ref and when a stop was passed on."""

    ref: Any
    stop_sent: float | None = None


class JobQueue:
    """Submit, stop and dispatch training runs of ``store``, at most ``max_jobs`` at once.

    ``max_jobs`` defaults to ``DIGITLAB_MAX_JOBS`` or, when that is unset, to as many runs as the
    cluster's CPUs hold at ``DIGITLAB_CPUS_PER_RUN`` each.
    """

    def __init__(self, store: RunStore, max_jobs: int | None = None, launcher: Launcher = launch_training,
                 interval: float = 0.25, stop_grace: float = STOP_GRACE_S) -> None:
        self.store = store
        self.stop_grace = stop_grace
        self._max_jobs = max_jobs if max_jobs is not None else (settings().max_jobs or None)
        self.launcher = launcher
        self.interval = interval
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.RLock()
        self._submit_lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._events: Any = None
        self._drain: Any = None  # a RunEvents.drain call not answered yet

    @property
    def max_jobs(self) -> int:
        """Runs that may train at once (asks the cluster on first use when not set)."""
        if self._max_jobs is None:
            self._max_jobs = max(1, cluster.total_cpus() // settings().cpus_per_run)
        return max(1, self._max_jobs)

    @property
    def known_max_jobs(self) -> int | None:
        """``max_jobs`` if known without asking the cluster (set, or asked before), else None."""
        return self._max_jobs

    @property
    def events(self) -> Any:
        """The cluster's RunEvents actor (joining Ray on first use)."""
        if self._events is None:
            cluster.connect()
            self._events = run_events(detached=cluster.is_remote())
        return self._events

    # ---- submitting and stopping -------------------------------------------------------------

    def submit(self, config: RunConfig, owner: str | None = None, grid: str | None = None) -> str:
        """Queue a run for ``owner`` and start it at once if a slot is free; return its id.

        The instance's limits (core.classroom.limits) are checked first: too many epochs, too big a model, a
        full queue or too many of this owner's runs waiting raise DigitLabError and queue nothing.
        """
        return self.submit_many([config], owner=owner, grid=grid)[0]

    def submit_many(self, configs: Sequence[RunConfig], owner: str | None = None,
                    grid: str | None = None) -> list[str]:
        """Queue several runs for ``owner`` (a grid: all or none pass the limits); return their ids."""
        with self._submit_lock:  # one check-then-create at a time, so the queue limits hold here
            self.check_limits(configs, owner)
            ids = [self.store.create(config, grid=grid, owner=owner).id for config in configs]
        if self._thread is None or not self._thread.is_alive():
            self.dispatch()  # else the dispatcher thread starts them within `interval`: the page shows them at once
        return ids

    def check_limits(self, configs: Sequence[RunConfig], owner: str | None = None) -> None:
        """Raise DigitLabError unless the instance's limits (core.classroom.limits) allow ``owner`` to queue
        ``configs`` now: each one's epochs and model size, how many runs would then wait for a slot,
        and how many of ``owner``'s would."""
        allowed = limits()
        for config in configs:
            allowed.check_config(config)
        if allowed.max_queue is not None or allowed.max_queued_per_owner is not None:
            runs = self.store.list()
            waiting = sum(r.status == QUEUED for r in runs)
            free = self.max_jobs - sum(r.status == RUNNING for r in runs)
            allowed.check_queue(waiting, free, adding=len(configs))
            allowed.check_owner_queue(sum(r.status == QUEUED and r.owner == owner for r in runs),
                                      adding=len(configs))

    def stop(self, run_id: str) -> Run:
        """Cancel a queued run at once, or stop a running one: gracefully at its next batch (the
        model so far is kept), its worker ended after ``stop_grace`` seconds (the model is lost)."""
        run = self.store.request_stop(run_id)
        if run.status == RUNNING:
            self.dispatch()
        return self.store.get(run_id)

    def queue(self) -> list[Run]:
        """Queued runs in start order; each has ``queue_position`` from 1."""
        return self.store.queued()

    # ---- dispatching -------------------------------------------------------------------------

    def dispatch(self) -> list[str]:
        """One round: record reports, close ended runs, enforce stops, start queued runs while
        slots are free. Returns the ids started."""
        with self._lock:
            if self._flights:
                self._collect()
                self._enforce_stops()
            elif not self.store.has_queued():  # idle: no need to reach Ray at all
                return []
            started = []
            cap = limits().max_running_per_owner
            while (run := self.store.claim_next(self.max_jobs, cap)) is not None:
                self.store.set_pid(run.id, os.getpid())  # this process collects the result
                try:
                    ref = self.launcher(run, self.events)
                except (DigitLabError, RayError, OSError) as err:
                    self.store.fail(run.id, f"could not start the run: {err}")
                    continue
                self._flights[run.id] = _Flight(ref)
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
        """Stop the dispatcher thread (tasks in flight carry on until collected or failed)."""
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
            except Exception:  # a locked store or a lost cluster must not kill the dispatcher
                log.exception("dispatch failed")

    def _collect(self) -> None:
        """Write reported progress and epochs, then close the runs whose task has ended.

        Reports are read without blocking the round (a busy cluster may answer late); a run is
        closed only after every report sent before its end has been written.
        """
        ids = list(self._flights)
        ready, _ = ray.wait([self._flights[i].ref for i in ids], num_returns=len(ids), timeout=0)
        ended = [i for i in ids if self._flights[i].ref in set(ready)]
        if self._drain is None:
            self._drain = self.events.drain.remote(ids)
        self._apply_drain(timeout=60.0 if ended else 0.5)
        if ended and self._drain is None:
            self._drain = self.events.drain.remote(ended)  # what they sent last, after that drain
            self._apply_drain(timeout=60.0)
        if self._drain is not None:  # the cluster did not answer: close them next round
            return
        for run_id in ended:
            flight = self._flights.pop(run_id)
            self._close(run_id, flight)
            self.events.forget.remote(run_id)

    def _apply_drain(self, timeout: float) -> None:
        """Write the pending drain's reports into the store if it answers within ``timeout``."""
        done, _ = ray.wait([self._drain], timeout=timeout)
        if not done:
            return
        try:
            reports = ray.get(self._drain)
        except RayError as err:
            log.warning("could not read run reports: %s", err)
            reports = {}
        self._drain = None
        for run_id, (latest, epochs) in reports.items():
            if not self._exists(run_id):
                continue
            for event in epochs:
                self.store.add_epoch(run_id, event)
            if latest is not None:
                self.store.update_progress(run_id, latest)

    def _close(self, run_id: str, flight: _Flight) -> None:
        """Close a run whose task ended: write what it returned, or fail it with the reason."""
        try:
            result = ray.get(flight.ref, timeout=30)
        except (TaskCancelledError, WorkerCrashedError) as err:
            if flight.stop_sent is not None:
                self.store.finish(run_id, STOPPED, self._partial_metrics(run_id))
            else:
                self.store.fail(run_id, _crash_reason(err, self._epochs_done(run_id)))
            return
        except (RayError, GetTimeoutError) as err:
            self.store.fail(run_id, _crash_reason(err, self._epochs_done(run_id)))
            return
        if not self._exists(run_id):  # deleted meanwhile: nothing to write into
            return
        try:
            if result["status"] == FAILED:
                self.store.fail(run_id, result.get("error") or "the run failed")
                return
            if result.get("model") is not None:
                atomic_write_bytes(self.store.folder(run_id) / "model.keras", result["model"])
            if result.get("predictions") is not None:
                self.store.save_array(run_id, PREDICTIONS_NAME, result["predictions"])
            if result.get("epoch_predictions") is not None:
                self.store.save_array(run_id, EPOCH_PREDICTIONS_NAME, result["epoch_predictions"])
            self.store.finish(run_id, result["status"], result.get("metrics") or {})
        except (OSError, DigitLabError, KeyError, TypeError) as err:
            self.store.fail(run_id, f"could not save what the run returned: {err}")

    def _enforce_stops(self) -> None:
        """Pass stop requests to running tasks; end the worker of one that has not obeyed in time."""
        now = time.monotonic()
        for run_id, flight in list(self._flights.items()):
            try:
                run = self.store.get(run_id)
            except DigitLabError:  # deleted: its task is of no use any more
                run = None
            if run is not None and not (run.status == RUNNING and run.stop_requested):
                continue
            if flight.stop_sent is None:
                flight.stop_sent = now
                self.events.stop.remote(run_id)
            elif now - flight.stop_sent > self.stop_grace:
                ray.cancel(flight.ref, force=True)
                del self._flights[run_id]
                self.events.forget.remote(run_id)
                if run is not None:
                    self.store.finish(run_id, STOPPED, self._partial_metrics(run_id))

    def _exists(self, run_id: str) -> bool:
        return self.store.folder(run_id).is_dir()

    def _epochs_done(self, run_id: str) -> int:
        try:
            return len(self.store.history(run_id))
        except DigitLabError:
            return 0

    def _partial_metrics(self, run_id: str) -> dict[str, Any]:
        """The last recorded epoch's metrics of a run whose worker was ended (no model kept)."""
        hist = self.store.history(run_id)
        if not len(hist):
            return {"epochs": 0}
        last = hist.iloc[-1].to_dict()
        last.pop("epoch", None)
        return {**last, "epochs": len(hist), "seconds": float(hist["seconds"].sum())}


def _crash_reason(err: BaseException, epochs_done: int) -> str:
    """Why a task ended without a result, in words (never retried: see the module docstring)."""
    when = f"after {epochs_done} epoch{'s' if epochs_done != 1 else ''}" if epochs_done else "before its first epoch"
    if isinstance(err, NodeDiedError) or "node" in str(err).lower() and "died" in str(err).lower():
        return f"the machine running it left the cluster {when}"
    if isinstance(err, WorkerCrashedError):
        return f"its worker process was killed (or ran out of memory) {when}"
    if isinstance(err, OwnerDiedError):
        return f"the dispatcher that started it ended {when}"
    if isinstance(err, RayTaskError):
        return f"{type(err.cause).__name__}: {err.cause}"
    return f"the cluster lost it {when}: {type(err).__name__}"
