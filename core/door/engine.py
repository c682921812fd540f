"""The process's run queue per run root and its dispatcher (``engine``), the classroom's limits
applied to it (``class_dispatch_cap`` before each dispatch, ``admit_within_limits`` before each
submit), and the first worker's warm-up. Re-exported by :mod:`core.lab`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from core.classroom.access import owner_label
from core.classroom.limits import limits
from core.execution import tasks, warmup
from core.execution.queue import JobQueue, QueueCounts
from core.runs.store import QUEUED, RUNNING, Run, RunStore
from core.settings import settings
from core.training.config import RunConfig

log = logging.getLogger(__name__)
_engines: dict[str, JobQueue] = {}
_engines_lock = threading.Lock()


def engine(root: Path | None = None, dispatching: bool = True) -> JobQueue:
    """The process's one run queue for the run root ``root`` (default: the settings' run root),
    its dispatcher thread started when ``dispatching``. Keyed by root, so a test that points
    DIGITLAB_RUN_ROOT elsewhere gets its own."""
    key = str(Path(root if root is not None else settings().run_root).resolve())
    with _engines_lock:
        queue = _engines.get(key)
        if queue is None:
            store = RunStore(Path(key))
            # The classroom's per-owner cap and fair share, read at each dispatch (limits may change
            # while it runs); runs past the time budget, or over fair share while others wait, yield.
            queue = _engines[key] = JobQueue(store)
            queue.running_per_owner = lambda q=queue: class_dispatch_cap(q.store, q.max_jobs)
    if not dispatching:
        return queue
    tasks.serve(queue.store.db)  # this process also takes its share of everyone's background tasks
    return queue.start()


def close_engine(root: Path | None = None) -> None:
    """Stop the dispatcher thread of ``root``'s run queue, if this process has one (tests, whose
    run folders go away; runs in flight carry on until collected or failed)."""
    key = str(Path(root if root is not None else settings().run_root).resolve())
    with _engines_lock:
        queue = _engines.pop(key, None)
    if queue is not None:
        queue.close()
        tasks.unserve(queue.store.db)


def warm_up() -> bool:
    """Warm a training worker for this process's engine in the background, once per run root
    (core.execution.warmup): the first run then starts like a later one. True if this call began it."""
    queue = engine(dispatching=False)
    return warmup.warm_up(queue, str(queue.store.root))


def class_dispatch_cap(store: RunStore, slots: int, now: float | None = None) -> int | None:
    """What one person may have training at once, asked by the queue before each dispatch round
    (core.classroom.limits.Limits.fair_share: the per-owner cap, and the slots shared among
    everyone with work while two or more people have some). On the way it asks to stop (the
    model so far is kept) a run past the run time budget, and, while someone with nothing
    training waits and no slot is free, the newest runs of whoever holds more than that share:
    no one holds every slot while another waits."""
    allowed = limits()
    now = time.time() if now is None else now
    active = [r for r in store.list() if r.status in (RUNNING, QUEUED)]
    running = [r for r in active if r.status == RUNNING and not r.stop_requested]
    for run in list(running):
        if run.started is not None and allowed.over_time(now - run.started):
            log.warning(
                "run %s stopped: it trained past the run time budget of %s minutes", run.id, allowed.max_run_minutes
            )
            store.request_stop(run.id)
            running.remove(run)
    cap = allowed.fair_share(slots, len({r.owner for r in active}))
    holding: dict[str | None, list[Run]] = {}
    for run in running:
        holding.setdefault(run.owner, []).append(run)
    starved = {r.owner for r in active if r.status == QUEUED} - set(holding)
    if cap is not None and starved and len(running) >= slots:
        for owner, theirs in holding.items():
            for run in sorted(theirs, key=lambda r: r.started or 0.0)[cap:]:  # the newest give way
                log.warning(
                    "run %s of %s stopped: over its fair share of %s slot(s) while others wait",
                    run.id,
                    owner_label(owner),
                    cap,
                )
                store.request_stop(run.id)
    return cap


def admit_within_limits(configs: Sequence[RunConfig], counts: Callable[[], QueueCounts]) -> None:
    """The classroom's limits on queuing ``configs`` (each one's epochs and model size, how many
    runs would then wait, how many of the owner's would): DigitLabError queues nothing."""
    allowed = limits()
    for config in configs:
        allowed.check_config(config)
    if allowed.max_queue is not None or allowed.max_queued_per_owner is not None:
        now = counts()
        allowed.check_queue(now.waiting, now.free, adding=len(configs))
        allowed.check_owner_queue(now.owner_waiting, adding=len(configs))
