"""The one way to run background work on Ray: submit, follow, cancel.

A task is one piece of work of a declared :class:`TaskKind` (a label search, an embedding map, a
cross-dataset evaluation, drawing the default dataset...): ``submit(kind, payload, owner)`` queues
``kind.work(payload, progress)`` and returns the task's id; ``follow(id)`` says where it is
(queued, running, finished with its result, failed with its cause, stopped: the states of
:mod:`core.states`) with the latest ``progress(fraction, text)`` it reported; ``cancel(id)`` stops
it. Training and grid runs are the other kinds of work: they go through the run queue
(core.execution.queue), whose runs :func:`run_task` shows as the same :class:`Task`.

Every task is a row of the lab's one job table (core.store.jobs), pool ``tasks``: its payload,
its state and, once collected, its result live there, so any replica (or CLI) can follow it, and
a task outlives the replica that submitted it. Each process that submits or serves runs a small
daemon thread, its dispatcher: it claims queued tasks (one claim per task across replicas, fair
share and per-owner caps from core.store.jobs), has the run keeper (core.execution.keeper) start
them so they outlive this process, collects the ones it holds when they end (``kind.collect`` runs
there, once, and writes what the worker returned), renews its leases, and adopts the tasks of a
dispatcher that is gone. At most ``slots()`` tasks run at once (``DIGITLAB_MAX_JOBS``, or the
cluster's CPUs over ``DIGITLAB_CPUS_PER_RUN``). A fault fails the task with its cause and is never
retried. Progress travels through one named actor (:class:`TaskBoard`), so a task on another node
reports without any shared filesystem.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ray
from ray import cloudpickle
from ray.exceptions import GetTimeoutError, RayError, RayTaskError, TaskCancelledError, WorkerCrashedError
from sqlalchemy import Connection, insert, select, update

from core.errors import DigitLabError
from core.execution import cluster, task_env
from core.execution.keeper import keeper
from core.execution.priority import yield_to_pages
from core.runs import eta
from core.runs.describe import duration_text
from core.runs.eta import start_text
from core.settings import settings
from core.states import ACTIVE, FAILED, FINISHED, QUEUED, RUNNING, STOPPED, Progress
from core.store import Database, codec, database
from core.store import jobs as job_table
from core.store.jobs import TASKS
from core.store.schema import jobs

log = logging.getLogger(__name__)

BOARD_NAME = "digitlab-task-board"
_lock = threading.RLock()
#: Seconds between two progress messages a task actually sends (the latest one always wins).
PROGRESS_INTERVAL_S = 0.2
#: Seconds between two rounds of the thread that starts queued tasks and collects ended ones.
PUMP_INTERVAL_S = 0.2
#: How long a page waits for the task board to answer before it shows the task as waiting on it.
BOARD_TIMEOUT_S = 10.0
#: Every kind this process knows, by name: a task adopted from another replica finds its kind here.
_KINDS: dict[str, TaskKind] = {}


@dataclass(frozen=True)
class TaskKind:
    """A kind of background work.

    ``work(payload, progress)`` runs on a worker (a module-level function: it travels by pickle)
    and returns the result; ``collect(payload, result)``, if given, runs on the server when the
    task has finished and returns what :func:`follow` then gives as the result (it is where run
    folders are written). ``cpus``: what one task of this kind takes. A kind is known by its name
    to every process that imports the module declaring it.
    """

    name: str
    work: Callable[[Any, Progress], Any]
    collect: Callable[[Any, Any], Any] | None = None
    cpus: float = 1.0

    def __post_init__(self) -> None:
        _KINDS[self.name] = self


@dataclass(frozen=True)
class Task:
    """What is known about one piece of background work."""

    id: str
    kind: str
    owner: str | None
    state: str
    fraction: float = 0.0
    text: str = ""
    error: str | None = None
    result: Any = None
    submitted: float = 0.0
    #: Estimated start (queued) and end (queued or running), Unix times, from how this instance's
    #: tasks of the same kind took lately (core.runs.eta, the runs' one estimate); None: no history.
    starts: float | None = None
    ends: float | None = None

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state in ACTIVE


@ray.remote(num_cpus=0)
class TaskBoard:
    """Latest (fraction, text) per task id, pushed by the tasks themselves."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[float, str]] = {}

    def report(self, task_id: str, fraction: float, text: str) -> None:
        self.states[task_id] = (float(fraction), str(text))

    def read(self, task_ids: list[str]) -> dict[str, tuple[float, str]]:
        return {t: self.states[t] for t in task_ids if t in self.states}

    def forget(self, task_id: str) -> None:
        self.states.pop(task_id, None)


def board() -> Any:
    """The task board actor (created on first use; on a cluster it outlives a server restart)."""
    return cluster.named_actor(TaskBoard, BOARD_NAME)


class _Progress:
    """The ``progress`` callable a task receives: sends (fraction, text), at most every 0.2 s."""

    def __init__(self, task_id: str, board_handle: Any) -> None:
        self.task_id, self.board, self._last = task_id, board_handle, 0.0

    def __call__(self, fraction: float, text: str = "") -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last >= PROGRESS_INTERVAL_S:
            self._last = now
            self.board.report.remote(self.task_id, min(max(float(fraction), 0.0), 1.0), text)


@ray.remote(max_retries=0)
def run_on_worker(task_id: str, board_handle: Any, packed: bytes) -> Any:
    """A task on a worker: ``packed`` is (work, payload, env) pickled by the dispatcher, so the run
    keeper that starts it never has to import the kind's module."""
    yield_to_pages()  # as a training run does: pages first, runs and tasks share the rest evenly
    work, payload, env = cloudpickle.loads(packed)
    progress = _Progress(task_id, board_handle)
    ray.get(board_handle.report.remote(task_id, 0.0, "started"))  # marks it running
    with task_env.applied(env):  # the submitting server's folders and settings
        return work(payload, progress)


@dataclass
class _Flight:
    """A task this process's dispatcher holds: its result's ref and what collecting it needs."""

    db: Database
    kind: TaskKind
    payload: Any
    ref: Any
    generation: int  # cluster.generation() when taken: a ref of a Ray this process left is dead
    closing: bool = False  # one caller brings its outcome home


_flights: dict[str, _Flight] = {}
#: Kinds of the tasks this process submitted (a test may declare two kinds of one name).
_own_kinds: dict[str, TaskKind] = {}
#: Databases this process dispatches for: served ones always, others while they have tasks.
_databases: dict[str, tuple[Database, bool]] = {}
_pumper: threading.Thread | None = None
_renewed = float("-inf")


_slots: dict[int, int] = {}


def slots() -> int:
    """Tasks that may run at once (core.execution.cluster.slots, the same figure as runs), asked
    once per Ray this process joins (the dispatcher asks every round)."""
    if settings().max_jobs:
        return settings().max_jobs
    key = cluster.generation()
    if key not in _slots:
        _slots[key] = cluster.slots()
    return _slots[key]


def serve(db: Database | None = None) -> None:
    """Dispatch tasks of ``db`` (default: the lab's database) from this process for as long as it
    runs: a dashboard replica takes its share of everyone's queued tasks and adopts those of a
    replica that is gone."""
    _watch(db or database(), served=True)


def unserve(db: Database | None = None) -> None:
    """Stop serving ``db`` (tests, whose folders go away); its tasks in flight are still collected."""
    db = db or database()
    with _lock:
        if db.url in _databases:
            _databases[db.url] = (db, False)


def submit(
    kind: TaskKind,
    payload: Any = None,
    owner: str | None = None,
    resources: Mapping[str, float] | None = None,
    running_per_owner: int | None = None,
    task_id: str | None = None,
) -> str:
    """Queue ``kind.work(payload, progress)`` for ``owner``; it starts as soon as the policy (see the
    module docstring) allows. ``resources``: custom Ray resources that place it on nodes having
    them; ``running_per_owner``: how many of this owner's tasks may run at once (None: no cap);
    ``task_id``: the id to give it (9 to 32 characters: what it works for, found again by any
    replica), else a fresh one. An id already taken is refused."""
    if not isinstance(kind, TaskKind) or not callable(kind.work):
        raise DigitLabError(f"a task is submitted with its TaskKind, not {type(kind).__name__}")
    board()  # joins Ray (a clear DigitLabError when it cannot start) before anything is queued
    kept = codec.encode({"payload": payload, "env": task_env.current()})
    if task_id is not None and not (isinstance(task_id, str) and 8 < len(task_id) <= 32):
        raise DigitLabError(f"a task id has 9 to 32 characters, not {str(task_id)[:40]!r}")
    db = database()
    task_id = task_id or secrets.token_hex(8)
    with db.write() as conn:
        if conn.execute(select(jobs.c.id).where(jobs.c.id == task_id)).first() is not None:
            raise DigitLabError(f"task {task_id!r} exists already")
        conn.execute(
            insert(jobs).values(
                id=task_id,
                kind=kind.name,
                pool=TASKS,
                owner=owner,
                state=QUEUED,
                created=time.time(),
                cap=running_per_owner,
                resources=json.dumps(dict(resources or {})),
                payload=kept,
                progress=json.dumps({"phase": QUEUED}),
            )
        )
    with _lock:
        _own_kinds[task_id] = kind
    _watch(db)
    _pump()
    return task_id


def follow(task_id: str) -> Task:
    """The task's state; DigitLabError for an id no one submitted to this lab."""
    db = database()
    _row(db, task_id)  # unknown ids fail before anything else
    _watch(db)
    _pump()
    row = _row(db, task_id)
    if row.state not in ACTIVE:
        return _final(row)
    starts, ends, ahead, cap = _estimate(db, row)
    if row.state == QUEUED and cap is not None:
        held = f"waiting for its owner's other task{'s' if cap > 1 else ''} to end (at most {cap} at once per person)"
        return _task(row, text=held, starts=starts, ends=ends)
    if row.state == QUEUED:
        when = start_text(starts) if starts is not None else "start time unknown (no task like it finished here yet)"
        waiting = f"waiting for a free slot ({ahead} ahead), {when}" if ahead else "starting"
        return _task(row, text=waiting, starts=starts, ends=ends)
    try:  # a busy or restarting cluster may answer late: report the task as waiting, never hang a page
        seen = ray.get(board().read.remote([task_id]), timeout=BOARD_TIMEOUT_S)
    except GetTimeoutError:
        return _task(row, text="waiting for the cluster to answer")
    if task_id not in seen:
        return _task(row, state=QUEUED, text="waiting for a free CPU")
    fraction, text = seen[task_id]
    if ends is not None:
        text += f" · about {duration_text(max(ends - time.time(), 1.0))} left"
    # 100 % only once its result is home: the worker's last report arrives before its result does
    return _task(row, fraction=min(fraction, 0.99), text=text, ends=ends)


def typical_seconds(kind: str) -> float | None:
    """How long a task of ``kind`` (its name) took on this instance lately: the median of its latest
    finished ones (None: none yet), the pace :func:`follow` announces waits with."""
    with database().read() as conn:
        pace, factor = _paces(conn, jobs.c.kind == kind, limit=eta.RECENT)
    return pace[(kind, "")].times(factor).duration(1) if pace else None


def _paces(conn: Connection, *which: Any, limit: int) -> tuple[dict[tuple[str, str], eta.Pace], float]:
    """The unloaded paces of the latest ``limit`` finished tasks (``which``: more conditions), by
    kind, and the slowdown expected now (core.runs.eta: runs and tasks share the cores)."""
    done = conn.execute(
        select(jobs.c.kind, jobs.c.started, jobs.c.finished)
        .where(jobs.c.pool == TASKS, jobs.c.state == FINISHED, jobs.c.started.is_not(None), *which)
        .order_by(jobs.c.finished.desc())
        .limit(limit)
    ).all()
    now = time.time()
    intervals = job_table.busy_intervals(conn, min((r.started for r in done), default=now), now)
    capacity = slots()
    past = [
        eta.Past(r.kind, "", max(r.finished - r.started, 0.0), load=eta.mean_load(r.started, r.finished, intervals))
        for r in done
        if r.finished
    ]
    factor = eta.slowdown(eta.expected_load(job_table.active_counts(conn), capacity), capacity)
    return eta.paces(past, capacity), factor


#: Finished tasks read for the paces (the latest; eta.paces keeps ``eta.RECENT`` of each kind).
_HISTORY = 200


def _estimate(db: Database, row: Any) -> tuple[float | None, float | None, int, int | None]:
    """(estimated start, estimated end, tasks ahead, cap holding it) of the active task ``row``: the
    tasks queue as runs do (core.runs.eta.estimated_starts, a task being a run of one "epoch" of
    its kind), at the pace this instance's latest finished tasks of each kind took. Ahead: queued
    before it in start order, plus every slot taken when none is free. The cap: how many tasks its
    owner may run at once, when that (not a slot) is what it waits for; else None."""
    with db.read() as conn:
        active = conn.execute(
            select(jobs.c.id, jobs.c.kind, jobs.c.state, jobs.c.started, jobs.c.cap).where(
                jobs.c.pool == TASKS, jobs.c.state.in_(ACTIVE)
            )
        ).all()
        order = job_table.start_order(conn, TASKS, capped=False)
        startable = job_table.start_order(conn, TASKS)
        pace, factor = _paces(conn, limit=_HISTORY)
    kinds = {r.id: r.kind for r in active}
    running = [eta.Pending(r.id, r.kind, "", 1, started=r.started) for r in active if r.state == RUNNING]
    queued = [eta.Pending(i, kinds[i], "", 1) for i in order if i in kinds]
    own = pace[(row.kind, "")].times(factor) if (row.kind, "") in pace else None
    if row.state == RUNNING:
        started = next((r.started for r in running if r.id == row.id), None)
        return None, (started + own.duration(1)) if own and started else None, 0, None
    starts = eta.estimated_starts(running, queued, pace, slots=slots(), factor=factor).get(row.id)
    ids = [q.id for q in queued]
    position = ids.index(row.id) if row.id in ids else 0
    ahead = position + (len(running) if len(running) >= slots() else 0)
    cap = next((r.cap for r in active if r.id == row.id), None) if row.id not in startable else None
    return starts, (starts + own.duration(1)) if own and starts is not None else None, ahead, cap


def cancel(task_id: str) -> Task:
    """Stop the task: a queued one never starts, a running one's worker is ended at once (by the
    run keeper that started it, whichever replica holds it)."""
    db = database()
    _row(db, task_id)
    with db.write() as conn:
        stopped_running = job_table.close(conn, task_id, STOPPED, states=(RUNNING,))
        if not stopped_running:
            job_table.close(conn, task_id, STOPPED, states=(QUEUED,))
    if stopped_running:
        try:
            ray.get(keeper().cancel.remote(task_id), timeout=30)
            board().forget.remote(task_id)
        except (RayError, GetTimeoutError, DigitLabError) as err:
            log.warning("could not end task %s's worker: %s", task_id, err)
    return _final(_row(db, task_id))


def wait(task_id: str, timeout: float | None = None, poll: float = 0.1) -> Task:
    """Follow until the task ends (or ``timeout`` seconds pass); return its last state."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        task = follow(task_id)
        if not task.active or (deadline is not None and time.monotonic() > deadline):
            return task
        time.sleep(poll)


def run_task(run: Any) -> Task:
    """A training run of the run queue (core.runs.store.Run) as a Task: same states, progress from
    its epochs and batches, its metrics as the result once finished."""
    progress = run.progress or {}
    fraction = 1.0 if run.status == FINISHED else 0.0
    if run.status == RUNNING and progress.get("epochs"):
        batch = progress.get("batch", 0) / progress["batches"] if progress.get("batches") else 0.0
        fraction = min(1.0, (max(int(progress.get("epoch", 1)) - 1, 0) + batch) / int(progress["epochs"]))
    text = str(progress.get("phase") or run.status)
    return Task(
        id=run.id,
        kind="grid-run" if run.grid else "training",
        owner=run.owner,
        state=run.status,
        fraction=fraction,
        text=text,
        error=run.error,
        result=run.metrics if run.status == FINISHED else None,
        submitted=float(run.created or 0.0),
    )


# ---- rows as Tasks -------------------------------------------------------------------------------


def _row(db: Database, task_id: str) -> Any:
    row = None
    if isinstance(task_id, str) and 0 < len(task_id) <= 32:
        with db.read() as conn:
            row = conn.execute(
                select(
                    jobs.c.id, jobs.c.kind, jobs.c.owner, jobs.c.state, jobs.c.created, jobs.c.error, jobs.c.result
                ).where(jobs.c.id == task_id, jobs.c.pool == TASKS)
            ).first()
    if row is None:
        raise DigitLabError(f"no task {str(task_id)[:40]!r} (unknown here)")
    return row


def _task(row: Any, **state: Any) -> Task:
    values = {"state": row.state, **state}
    return Task(id=row.id, kind=row.kind, owner=row.owner, submitted=float(row.created), **values)


def _final(row: Any) -> Task:
    """An ended task as its row keeps it (a finished one with its collected result)."""
    if row.state in ACTIVE:
        return _task(row)
    result = None
    if row.state == FINISHED and row.result is not None:
        try:
            result = codec.decode(row.result)
        except (DigitLabError, ValueError, AttributeError, ImportError, TypeError) as err:
            return _task(row, state=FAILED, error=f"its result cannot be read here: {err}")
    return _task(
        row,
        fraction=1.0 if row.state == FINISHED else 0.0,
        text="done" if row.state == FINISHED else "",
        error=row.error,
        result=result,
    )


# ---- the dispatcher: claim, start, renew, adopt, collect -----------------------------------------


def _watch(db: Database, served: bool = False) -> None:
    with _lock:
        was = _databases.get(db.url)
        _databases[db.url] = (db, served or (was is not None and was[1]))
    _ensure_pumper()


def _pump() -> None:
    """One round for every watched database: collect ended tasks, renew leases, adopt orphans,
    start queued tasks while slots allow. A database with nothing to do is no longer watched."""
    _collect()
    global _renewed
    if time.monotonic() - _renewed > job_table.LEASE_S / 3:
        _renewed = time.monotonic()
        _renew()
    with _lock:
        watched = list(_databases.values())
    for db, served in watched:
        try:
            _adopt(db)
            _start_queued(db)
            idle = not served and not _has_active(db) and not any(f.db.url == db.url for f in _flights.values())
        except DigitLabError as err:  # its folder went away (a test), or the database is down
            log.debug("tasks of %s: %s", db.where, err)
            idle = not served
        if idle:
            with _lock:
                if _databases.get(db.url, (None, True))[1] is False:
                    _databases.pop(db.url, None)


def _has_active(db: Database) -> bool:
    with db.read() as conn:
        return (
            conn.execute(select(jobs.c.id).where(jobs.c.pool == TASKS, jobs.c.state.in_(list(ACTIVE))).limit(1)).first()
            is not None
        )


def _start_queued(db: Database) -> None:
    while (task_id := job_table.claim_next(db, TASKS, slots())) is not None:
        with db.read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == task_id)).first()
        assert row is not None, task_id  # just claimed: tasks are never deleted
        kind = _own_kinds.get(task_id) or _KINDS.get(row.kind)
        try:
            if kind is None:
                raise DigitLabError(f"this server does not know the task kind {row.kind!r}")
            kept = codec.decode(row.payload)
            payload, env = kept["payload"], kept["env"]
            resources = json.loads(row.resources or "{}")
            handle = board()
            # Ray's own channel (what it does with every task argument); the store never holds a pickle
            packed = cloudpickle.dumps((kind.work, payload, env))
            options = {"num_cpus": kind.cpus, "resources": resources, "name": f"{kind.name}:{task_id}"}
            ref = ray.get(keeper().launch_task.remote(task_id, options, (task_id, handle, packed)), timeout=120)[0]
        except (RayError, GetTimeoutError, DigitLabError, TypeError, ValueError) as err:
            with db.write() as conn:
                job_table.close(conn, task_id, FAILED, error=f"could not start the task: {err}")
            continue
        with _lock:
            _flights[task_id] = _Flight(db, kind, payload, ref, cluster.generation())


def _adopt(db: Database) -> None:
    """Take over the running tasks whose dispatcher is gone: those the run keeper still holds are
    collected here from now on; the others failed (Ray lost them)."""
    orphans = job_table.orphans(db, TASKS)
    if not orphans:
        return
    try:
        held = ray.get(keeper().adopt.remote([task_id for task_id, _ in orphans]), timeout=30)
    except (RayError, GetTimeoutError, DigitLabError) as err:
        log.warning("could not reach the run keeper: %s", err)
        return
    for task_id, gone in orphans:
        if not job_table.take_over(db, task_id, gone):
            continue  # another dispatcher adopted it first
        with db.read() as conn:
            row = conn.execute(select(jobs.c.kind, jobs.c.payload).where(jobs.c.id == task_id)).first()
        assert row is not None, task_id  # just taken over: tasks are never deleted
        kind = _own_kinds.get(task_id) or _KINDS.get(row.kind)
        if task_id in held and kind is not None:
            with _lock:
                _flights[task_id] = _Flight(
                    db, kind, codec.decode(row.payload)["payload"], held[task_id][0], cluster.generation()
                )
            log.info("adopted task %s from ended dispatcher %s", task_id, gone)
        else:
            with db.write() as conn:
                job_table.close(
                    conn,
                    task_id,
                    FAILED,
                    states=(RUNNING,),
                    error=f"the lab lost it: its dispatcher ({job_table.dispatcher_label(gone)}) "
                    "ended and Ray no longer holds it; start it again",
                )


def _renew() -> None:
    """Keep the leases of held tasks; let go of those another dispatcher took over or that ended
    elsewhere (a cancel)."""
    by_db: dict[str, list[str]] = {}
    with _lock:
        for task_id, flight in _flights.items():
            by_db.setdefault(flight.db.url, []).append(task_id)
    for ids in by_db.values():
        db = _flights[ids[0]].db if ids[0] in _flights else None
        if db is None:
            continue
        try:
            held = job_table.renew(db, ids)
        except DigitLabError:
            continue
        with _lock:
            for task_id in set(ids) - held:
                stale = _flights.get(task_id)
                if stale is not None and not stale.closing:
                    del _flights[task_id]


def _collect() -> None:
    """Bring home the outcome of every held task whose worker ended (once per task)."""
    with _lock:
        running = {i: f for i, f in _flights.items() if not f.closing}
        for task_id, flight in list(running.items()):
            if flight.generation != cluster.generation():  # never hand a gone Ray's ref back to Ray
                del running[task_id], _flights[task_id]
                _write_end(flight.db, task_id, FAILED, error="the lab's Ray restarted while it ran: start it again")
    if not running:
        return
    refs = [f.ref for f in running.values()]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
    ready_set = set(ready)
    for task_id, flight in running.items():
        with _lock:
            mine = flight.ref in ready_set and not flight.closing
            flight.closing = flight.closing or mine
        if mine:
            _close(task_id, flight)


def _close(task_id: str, flight: _Flight) -> None:
    """Bring an ended task's outcome home, collecting its result on the server (once)."""
    state = FINISHED
    values: dict[str, Any] = {}
    try:
        result = ray.get(flight.ref, timeout=30)
        if flight.kind.collect is not None:
            result = flight.kind.collect(flight.payload, result)
        values = {"result": codec.encode(result)}
    except TaskCancelledError:
        state = STOPPED
    except WorkerCrashedError:
        state, values = FAILED, {"error": "the worker process died (killed or out of memory)"}
    except RayTaskError as err:
        cause = err.cause
        message = str(cause) if isinstance(cause, DigitLabError) else f"{type(cause).__name__}: {cause}"
        state, values = FAILED, {"error": message}
    except DigitLabError as err:  # the server could not keep the result
        state, values = FAILED, {"error": f"could not save the result: {err}"}
    except (RayError, GetTimeoutError, OSError, TypeError) as err:
        state, values = FAILED, {"error": f"{type(err).__name__}: {err}"}
    _write_end(flight.db, task_id, state, **values)
    with _lock:
        _flights.pop(task_id, None)
    try:
        keeper().forget.remote(task_id)
        board().forget.remote(task_id)
    except (RayError, DigitLabError):
        pass


def _write_end(db: Database, task_id: str, state: str, **values: Any) -> None:
    """Record how a held task ended, unless a cancel closed it first; its payload is dropped."""
    try:
        with db.write() as conn:
            job_table.close(conn, task_id, state, states=(RUNNING,), **values)
            conn.execute(update(jobs).where(jobs.c.id == task_id).values(payload=None))
    except DigitLabError as err:
        log.warning("could not record the end of task %s: %s", task_id, err)


def _ensure_pumper() -> None:
    """The daemon thread that keeps dispatching while any database is watched."""
    global _pumper
    with _lock:
        if _pumper is not None and _pumper.is_alive():
            return
        _pumper = threading.Thread(target=_pump_loop, name="digitlab-tasks", daemon=True)
        _pumper.start()


def _pump_loop() -> None:
    global _pumper
    while True:
        time.sleep(PUMP_INTERVAL_S)
        with _lock:
            if not _databases and not _flights:
                _pumper = None
                return
        try:
            _pump()
        except Exception:  # a lost cluster must not end the loop silently for ever
            log.exception("background tasks: a round failed")


__all__ = [
    "ACTIVE",
    "FAILED",
    "FINISHED",
    "QUEUED",
    "RUNNING",
    "STOPPED",
    "Progress",
    "Task",
    "TaskKind",
    "cancel",
    "follow",
    "run_task",
    "serve",
    "slots",
    "submit",
    "unserve",
    "wait",
]
