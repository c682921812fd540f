"""Background training on Ray: the run store is the queue, and a dispatcher feeds Ray from it.

A :class:`JobQueue` submits runs (status "queued") and, on each :meth:`JobQueue.dispatch`:
writes what running tasks reported (core.execution.worker.RunEvents) into the run store, closes runs whose
task ended (writing the model and predictions it returned into the run folder), forces stops that
were not obeyed in time, and claims queued runs, fair share across owners, while slots are free,
submitting each as a Ray task. The dashboard keeps one queue with a background thread
(:meth:`JobQueue.start`); the CLI dispatches in its foreground loop (:meth:`JobQueue.wait`).
Claims are atomic in the lab's database (core.store.jobs), so every dispatcher (replicas and
CLIs, on any machine) shares the slots; each renews the leases of the runs it holds.

Fault policy: a run whose worker process dies or whose node is lost ends **failed** with the
reason; it is never retried (a retry would repeat epochs already reported). A dispatcher that
ends (a server restart) leaves its runs training: their tasks belong to the RunKeeper
(core.execution.keeper), and the next dispatcher adopts them, epochs reported meanwhile included.
Only a run the keeper no longer holds (Ray itself was restarted) is failed, with that reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import (
    GetTimeoutError,
    NodeDiedError,
    OwnerDiedError,
    RayError,
    RayTaskError,
    TaskCancelledError,
    WorkerCrashedError,
)

from core.errors import DigitLabError
from core.execution import cluster, warmup
from core.execution.keeper import keeper
from core.execution.shipping import dataset_payload
from core.execution.worker import run_events
from core.runs.store import EPOCH_PREDICTIONS_NAME, PREDICTIONS_NAME, Run, RunStore, atomic_write_bytes
from core.settings import settings
from core.states import FAILED, QUEUED, RUNNING, STOPPED
from core.store.jobs import LEASE_S, dispatcher_label
from core.training.config import RunConfig

log = logging.getLogger(__name__)

#: Seconds a run asked to stop may stay silent before its worker is ended. Silent, not slow: a
#: worker that goes on reporting (finishing its batch, testing, saving the model) is waited for
#: however loaded the machine, so a stop keeps the model reached; only one that reports nothing
#: (hung, or deaf to stops) is ended, and its run keeps the epochs already written.
STOP_GRACE_S = 60.0
#: How long the dispatcher waits for the keeper to take a run before it fails the launch.
LAUNCH_TIMEOUT_S = 120.0
#: Starts the Ray task of a claimed run: (run, the RunEvents actor[, start_model=bytes]) -> ObjectRef
#: of its result (start_model only for a run that starts from another run's model).
Launcher = Callable[..., Any]


@dataclass(frozen=True)
class QueueCounts:
    """What the queue holds when a submission is checked: runs waiting, slots free, and how many
    of the submitting owner's runs wait."""

    waiting: int
    free: int
    owner_waiting: int


#: A submission's admission check (the Lab passes the classroom's limits): raises DigitLabError to
#: refuse ``configs`` for the owner, before anything is queued; its second argument gives the
#: queue's counts (asked only if needed: it may ask the cluster for its size).
Admission = Callable[[Sequence[RunConfig], Callable[[], QueueCounts]], None]


def launch_training(
    run: Run, events: Any, resources: dict[str, float] | None = None, start_model: bytes | None = None
) -> Any:
    """Submit ``run`` as a Ray task with ``DIGITLAB_CPUS_PER_RUN`` CPUs (and custom ``resources``,
    which place it on nodes that have them). The task gets the config, not the run folder; an
    uploaded dataset's file and the model it starts from (``start_model``) go along as bytes (the
    node may be another machine)."""
    if run.config is None:
        raise DigitLabError(run.problem or "the run has no readable config")
    cpus = settings().cpus_per_run
    warmup.wait_for_warm_up()  # the first run after a start takes the worker being warmed
    payload = dataset_payload(run.config.dataset)
    # The keeper submits the task, so it outlives this process (a server restart); its result's
    # reference comes back borrowed. The payload travels by value: the keeper owns its copy.
    options = {"num_cpus": cpus, "resources": resources or {}, "name": f"train:{run.id}"}
    launched = keeper().launch.remote(
        run.id, options, (run.id, run.config.to_dict(), events, payload, cpus, start_model)
    )
    try:
        return ray.get(launched, timeout=LAUNCH_TIMEOUT_S)[0]
    except GetTimeoutError:
        raise DigitLabError(f"the cluster did not take the run within {LAUNCH_TIMEOUT_S:.0f} s") from None


@dataclass
class _Flight:
    """A run this dispatcher submitted: its result's ref and when a stop was passed on."""

    ref: Any
    stop_sent: float | None = None
    #: When a report of the run last arrived (monotonic), and when the last drain answered at all:
    #: a stopping run is judged silent only on a cluster that answers.
    heard: float = field(default_factory=time.monotonic)


class JobQueue:
    """Submit, stop and dispatch training runs of ``store``, at most ``max_jobs`` at once.

    ``max_jobs`` defaults to ``DIGITLAB_MAX_JOBS`` or, when that is unset, to as many runs as the
    cluster's CPUs hold at ``DIGITLAB_CPUS_PER_RUN`` each. ``running_per_owner`` says how many of
    one owner's runs may train at once (asked at each dispatch, so a changed limit holds at once;
    None: no cap). The queue decides nothing about people beyond these numbers.
    """

    def __init__(
        self,
        store: RunStore,
        max_jobs: int | None = None,
        launcher: Launcher = launch_training,
        interval: float = 0.25,
        stop_grace: float = STOP_GRACE_S,
        running_per_owner: Callable[[], int | None] | None = None,
    ) -> None:
        self.store = store
        self.running_per_owner = running_per_owner
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
        self._keeper: Any = None
        self._generation = -1  # cluster.generation() of the handles above and of every flight
        self._drain: Any = None  # a RunEvents.drain call not answered yet
        self._renewed = float("-inf")  # when this dispatcher last renewed its leases
        self._answered = float("-inf")  # when RunEvents last answered a drain (monotonic)

    @property
    def max_jobs(self) -> int:
        """Runs that may train at once (asks the cluster on first use when not set)."""
        if self._max_jobs is None:
            self._max_jobs = cluster.slots()
        self.store.slots = max(1, self._max_jobs)  # the store's start estimates count free slots
        return self.store.slots

    @property
    def known_max_jobs(self) -> int | None:
        """``max_jobs`` if known without asking the cluster (set, or asked before), else None."""
        return self._max_jobs

    @property
    def events(self) -> Any:
        """The cluster's RunEvents actor (joining Ray on first use)."""
        self._check_generation()
        if self._events is None:
            self._events = run_events()
        return self._events

    @property
    def keeper(self) -> Any:
        """The cluster's RunKeeper, the owner of training tasks (joining Ray on first use)."""
        self._check_generation()
        if self._keeper is None:
            self._keeper = keeper()
        return self._keeper

    def _check_generation(self) -> None:
        """Join Ray; if this process left the Ray its handles and flights came from, drop them (Ray
        aborts the process when a gone Ray's handle is passed to a task) and fail those runs."""
        cluster.connect()
        if self._generation == cluster.generation():
            return
        self._events = self._keeper = self._drain = None
        self._generation = cluster.generation()
        gone, self._flights = list(self._flights), {}
        if not gone:
            return
        held = self._held_by_keeper(gone) or {}  # on a cluster the keeper may still hold them
        for run_id in gone:
            if run_id in held:
                self._flights[run_id] = _Flight(held[run_id][0])
            elif self.store.get(run_id).active:
                self.store.fail(run_id, "the lab's Ray restarted while it ran: queue it again")

    # ---- submitting and stopping -------------------------------------------------------------

    def submit(
        self, config: RunConfig, owner: str | None = None, grid: str | None = None, admit: Admission | None = None
    ) -> str:
        """Queue a run for ``owner`` and start it at once if a slot is free; return its id.

        ``admit`` (the caller's rules, e.g. the classroom's limits) is asked first with the queue's
        counts; its DigitLabError queues nothing.
        """
        return self.submit_many([config], owner=owner, grid=grid, admit=admit)[0]

    def submit_many(
        self,
        configs: Sequence[RunConfig],
        owner: str | None = None,
        grid: str | None = None,
        admit: Admission | None = None,
    ) -> list[str]:
        """Queue several runs for ``owner`` (a grid: ``admit`` passes all or none); return their ids."""
        with self._submit_lock:  # one check-then-create at a time, so the caller's limits hold here
            if admit is not None:
                admit(configs, lambda: self.counts(owner))
            ids = [self.store.create(config, grid=grid, owner=owner).id for config in configs]
        if self._thread is None or not self._thread.is_alive():
            self.dispatch()  # else the dispatcher thread starts them within `interval`: the page shows them at once
        return ids

    def counts(self, owner: str | None = None) -> QueueCounts:
        """Runs waiting, slots free now, and ``owner``'s runs waiting."""
        runs = self.store.list()
        return QueueCounts(
            waiting=sum(r.status == QUEUED for r in runs),
            free=self.max_jobs - sum(r.status == RUNNING for r in runs),
            owner_waiting=sum(r.status == QUEUED and r.owner == owner for r in runs),
        )

    def stop(self, run_id: str) -> Run:
        """Cancel a queued run at once, or stop a running one at its next batch: it ends "stopped"
        with the epochs and the model reached, however long the worker takes to test and save it,
        as long as it goes on reporting; a worker silent for ``stop_grace`` seconds is ended (its
        epochs kept, no model)."""
        run = self.store.request_stop(run_id)
        if run.status == RUNNING:
            self.dispatch()
        return self.store.get(run_id)

    def _start_model(self, run: Run) -> dict[str, bytes]:
        """The launcher's ``start_model`` for a run that starts from another's model (its
        ``model.keras`` bytes; DigitLabError once that run has none), else nothing."""
        if run.config is None or not run.config.start_from:
            return {}
        try:
            path = self.store.model_path(run.config.start_from)
        except DigitLabError:
            raise DigitLabError(f"run {run.config.start_from}, which it starts from, has no saved model") from None
        return {"start_model": path.read_bytes()}

    def queue(self) -> list[Run]:
        """Queued runs in start order; each has ``queue_position`` from 1."""
        return self.store.queued()

    # ---- dispatching -------------------------------------------------------------------------

    def dispatch(self) -> list[str]:
        """One round: record reports, close ended runs, enforce stops, start queued runs while
        slots are free. Returns the ids started."""
        with self._lock:
            if self._flights:
                self._check_generation()
            self._adopt_orphans()
            self._renew_leases()
            if self._flights:
                self._collect()
                self._enforce_stops()
            elif not self.store.has_queued():  # idle: no need to reach Ray at all
                return []
            started = []
            cap = self.running_per_owner() if self.running_per_owner is not None else None
            while (run := self.store.claim_next(self.max_jobs, cap)) is not None:  # held by this process
                try:
                    ref = self.launcher(run, self.events, **self._start_model(run))
                except (DigitLabError, RayError, OSError) as err:
                    self.store.fail(run.id, f"could not start the run: {err}")
                    continue
                self._flights[run.id] = _Flight(ref)
                started.append(run.id)
            return started

    def start(self) -> JobQueue:
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

    def wait(
        self, run_id: str, on_poll: Callable[[Run], None] | None = None, poll: float = 0.2, timeout: float | None = None
    ) -> Run:
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

    def _held_by_keeper(self, run_ids: list[str]) -> dict[str, list[Any]] | None:
        """Fresh references of the runs among ``run_ids`` the keeper still holds; None if it
        cannot be reached (nothing is decided then)."""
        try:
            return ray.get(self.keeper.adopt.remote(run_ids), timeout=30)
        except (RayError, GetTimeoutError, DigitLabError) as err:
            log.warning("could not reach the run keeper: %s", err)
            return None

    def _renew_leases(self) -> None:
        """Tell the other replicas this dispatcher lives (every third of a lease); let go of runs
        another dispatcher took over meanwhile (this one was thought gone)."""
        now = time.monotonic()
        if not self._flights or now - self._renewed < LEASE_S / 3:
            return
        self._renewed = now
        ids = list(self._flights)
        held = self.store.renew(ids)
        for run_id in set(ids) - held:
            try:
                taken = self.store.get(run_id).status == RUNNING
            except DigitLabError:
                taken = False
            if taken:
                log.warning("run %s was taken over by another dispatcher", run_id)
                del self._flights[run_id]

    def _adopt_orphans(self) -> None:
        """Take over the running runs whose dispatcher ended (a server restart): those the keeper
        still holds are collected from now on as if started here; the others are failed."""
        orphans = self.store.orphans()
        if not orphans:
            return
        held = self._held_by_keeper([run_id for run_id, _ in orphans])
        if held is None:
            return
        for run_id, gone in orphans:
            if not self.store.take_over(run_id, gone):
                continue  # another dispatcher adopted it first
            if run_id in held:
                self._flights[run_id] = _Flight(held[run_id][0])
                log.info("adopted run %s from ended dispatcher %s", run_id, gone)
            else:
                self.store.fail(
                    run_id,
                    f"Ray lost it: the server or CLI that dispatched it ({dispatcher_label(gone)}) "
                    "ended and its Ray with it (make run keeps Ray apart so runs outlive the "
                    "server); queue it again",
                )

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
            self.keeper.forget.remote(run_id)

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
        self._answered = time.monotonic()
        for run_id in reports:
            if run_id in self._flights:
                self._flights[run_id].heard = self._answered
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
        """Pass stop requests to running tasks; end the worker of a deleted run, and of one that has
        stayed silent for ``stop_grace`` seconds since (a worker that reports is never cut short)."""
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
            elif run is None or self._answered - max(flight.stop_sent, flight.heard) > self.stop_grace:
                if not ray.get(self.keeper.cancel.remote(run_id), timeout=30):  # a task not the keeper's
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
