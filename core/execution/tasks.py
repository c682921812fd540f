"""The one way to run background work on Ray: submit, follow, cancel.

A task is one piece of work of a declared :class:`TaskKind` (a label search, an embedding map, a
cross-dataset evaluation, drawing the default dataset...): ``submit(kind, payload, owner)`` runs
``kind.work(payload, progress)`` on a Ray worker and returns the task's id; ``follow(id)`` says
where it is (queued, running, finished with its result, failed with its cause, stopped: the
states of :mod:`core.states`) with the latest ``progress(fraction, text)`` it reported;
``cancel(id)`` stops it. Training and grid runs are the other kinds of work: they go through the
run queue (core.execution.queue), whose runs :func:`run_task` shows as the same :class:`Task`.

Policy, the same as the run queue's: at most ``slots()`` tasks run at once (``DIGITLAB_MAX_JOBS``,
or the cluster's CPUs over ``DIGITLAB_CPUS_PER_RUN``), the next one to start is the oldest of the
owner with the fewest tasks running (fair share), and an owner's running tasks are capped by the
number the caller passes (the classroom's ``max_running_per_owner``, passed in by the Lab).
A fault fails the task with its cause and is never retried.

Workers return results through Ray; they write no run folder and no index. A kind's ``collect``
runs on the server when the task ends (once, in the process that submitted it) and writes what
the worker returned. Progress travels through one named actor (:class:`TaskBoard`), so a task on
another node reports without any shared filesystem. Task ids live in this process: a task
belongs to the server (or CLI) that submitted it; a small daemon thread starts queued tasks and
collects ended ones even when nobody follows them.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError, TaskCancelledError, WorkerCrashedError

from core.errors import DigitLabError
from core.execution import cluster, task_env
from core.settings import settings
from core.states import ACTIVE, FAILED, FINISHED, QUEUED, RUNNING, STOPPED, Progress

log = logging.getLogger(__name__)

BOARD_NAME = "digitlab-task-board"
_lock = threading.RLock()
#: Seconds between two progress messages a task actually sends (the latest one always wins).
PROGRESS_INTERVAL_S = 0.2
#: Seconds between two rounds of the thread that starts queued tasks and collects ended ones.
PUMP_INTERVAL_S = 0.2
#: How long a page waits for the task board to answer before it shows the task as waiting on it.
BOARD_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TaskKind:
    """A kind of background work.

    ``work(payload, progress)`` runs on a worker (a module-level function: it travels by pickle)
    and returns the result; ``collect(payload, result)``, if given, runs on the server when the
    task has finished and returns what :func:`follow` then gives as the result (it is where run
    folders are written). ``cpus``: what one task of this kind takes.
    """

    name: str
    work: Callable[[Any, Progress], Any]
    collect: Callable[[Any, Any], Any] | None = None
    cpus: float = 1.0


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
def _run(task_id: str, board_handle: Any, work: Callable[[Any, Progress], Any], payload: Any,
         env: Mapping[str, str]) -> Any:
    progress = _Progress(task_id, board_handle)
    ray.get(board_handle.report.remote(task_id, 0.0, "started"))  # marks it running
    with task_env.applied(env):  # the submitting server's folders and settings
        return work(payload, progress)


@dataclass
class _Entry:
    kind: TaskKind
    owner: str | None
    payload: Any
    submitted: float
    resources: dict[str, float] = field(default_factory=dict)
    cap: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    ref: Any = None  # set once started
    generation: int = 0  # cluster.generation() when started: a ref of a Ray this process left is dead
    closing: bool = False  # one caller brings its outcome home
    final: Task | None = None


_tasks: dict[str, _Entry] = {}
_pumper: threading.Thread | None = None
_slots: int | None = None


def slots() -> int:
    """Tasks that may run at once: ``DIGITLAB_MAX_JOBS``, or the cluster's CPUs per run's CPUs."""
    global _slots
    if settings().max_jobs:
        return settings().max_jobs
    if _slots is None:
        _slots = max(1, cluster.total_cpus() // settings().cpus_per_run)
    return _slots


def submit(kind: TaskKind, payload: Any = None, owner: str | None = None,
           resources: Mapping[str, float] | None = None, running_per_owner: int | None = None) -> str:
    """Queue ``kind.work(payload, progress)`` for ``owner``; it starts as soon as the policy (see the
    module docstring) allows. ``resources``: custom Ray resources that place it on nodes having
    them; ``running_per_owner``: how many of this owner's tasks may run at once (None: no cap)."""
    if not isinstance(kind, TaskKind) or not callable(kind.work):
        raise DigitLabError(f"a task is submitted with its TaskKind, not {type(kind).__name__}")
    board()  # joins Ray (a clear DigitLabError when it cannot start) before anything is queued
    task_id = secrets.token_hex(8)
    with _lock:
        _tasks[task_id] = _Entry(kind, owner, payload, time.time(), dict(resources or {}), running_per_owner,
                                 task_env.current())
    _pump()
    _ensure_pumper()
    return task_id


def follow(task_id: str) -> Task:
    """The task's state; DigitLabError for an id this process did not submit."""
    entry = _entry(task_id)
    _pump()
    if entry.final is not None:
        return entry.final
    if entry.ref is None:
        return _task(task_id, entry, state=QUEUED, text="waiting for a free slot")
    try:  # a busy or restarting cluster may answer late: report the task as waiting, never hang a page
        seen = ray.get(board().read.remote([task_id]), timeout=BOARD_TIMEOUT_S)
    except GetTimeoutError:
        return _task(task_id, entry, state=RUNNING, text="waiting for the cluster to answer")
    if task_id not in seen:
        return _task(task_id, entry, state=QUEUED, text="waiting for a free CPU")
    fraction, text = seen[task_id]
    return _task(task_id, entry, state=RUNNING, fraction=fraction, text=text)


def cancel(task_id: str) -> Task:
    """Stop the task: a queued one never starts, a running one's worker is ended at once."""
    entry = _entry(task_id)
    with _lock:
        if entry.final is None:
            entry.final = _task(task_id, entry, state=STOPPED)
            if entry.ref is not None and not _stale(entry):
                ray.cancel(entry.ref, force=True)
                board().forget.remote(task_id)
    return entry.final


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
    return Task(id=run.id, kind="grid-run" if run.grid else "training", owner=run.owner, state=run.status,
                fraction=fraction, text=text, error=run.error, result=run.metrics if run.status == FINISHED else None,
                submitted=float(run.created or 0.0))


# ---- the policy: start queued tasks fairly, collect ended ones ----------------------------------

def _task(task_id: str, entry: _Entry, **state: Any) -> Task:
    """The Task of ``entry`` in the given state (the fields every state shares filled in)."""
    return Task(id=task_id, kind=entry.kind.name, owner=entry.owner, submitted=entry.submitted, **state)


def _stale(entry: _Entry) -> bool:
    """Whether the entry was started in a Ray this process has left (its ref is dead there)."""
    return entry.generation != cluster.generation()


def _entry(task_id: str) -> _Entry:
    with _lock:
        entry = _tasks.get(task_id) if isinstance(task_id, str) else None
    if entry is None:
        raise DigitLabError(f"no task {str(task_id)[:40]!r} (unknown here, or from before a restart)")
    return entry


def _pump() -> None:
    """One round: close the tasks whose worker ended, then start queued ones while slots allow."""
    with _lock:
        running = {i: e for i, e in _tasks.items() if e.ref is not None and e.final is None and not e.closing}
        for task_id, entry in list(running.items()):
            if _stale(entry):  # never hand a gone Ray's ref back to Ray
                del running[task_id]
                entry.final = _task(task_id, entry, state=FAILED,
                                    error="the lab's Ray restarted while it ran: start it again")
    if running:
        refs = [e.ref for e in running.values()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        ready_set = set(ready)
        for task_id, entry in running.items():
            with _lock:
                mine = entry.ref in ready_set and not entry.closing
                entry.closing = entry.closing or mine
            if mine:
                _close(task_id, entry)
    with _lock:
        while (picked := _next_to_start()) is not None:
            _start(*picked)


def _next_to_start() -> tuple[str, _Entry] | None:
    """The queued task to start now: the oldest of the owner with the fewest running (under caps)."""
    active = [e for e in _tasks.values() if e.ref is not None and e.final is None]
    if len(active) >= slots():
        return None
    busy: dict[str | None, int] = {}
    for e in active:
        busy[e.owner] = busy.get(e.owner, 0) + 1
    waiting = [(i, e) for i, e in _tasks.items() if e.ref is None and e.final is None
               and (e.cap is None or busy.get(e.owner, 0) < e.cap)]
    if not waiting:
        return None
    return min(waiting, key=lambda item: (busy.get(item[1].owner, 0), item[1].submitted))


def _start(task_id: str, entry: _Entry) -> None:
    kind = entry.kind
    try:
        handle = board()
        entry.generation = cluster.generation()
        entry.ref = _run.options(num_cpus=kind.cpus, resources=entry.resources, name=f"{kind.name}:{task_id}").remote(
            task_id, handle, kind.work, entry.payload, entry.env)
    except (RayError, DigitLabError, TypeError) as err:  # e.g. a payload that does not pickle
        entry.final = _task(task_id, entry, state=FAILED, error=f"could not start the task: {err}")


def _close(task_id: str, entry: _Entry) -> None:
    """Bring an ended task's outcome home, collecting its result on the server (once)."""
    try:
        result = ray.get(entry.ref, timeout=30)
        if entry.kind.collect is not None:
            result = entry.kind.collect(entry.payload, result)
        final = _task(task_id, entry, state=FINISHED, fraction=1.0, text="done", result=result)
    except TaskCancelledError:
        final = _task(task_id, entry, state=STOPPED)
    except WorkerCrashedError:
        final = _task(task_id, entry, state=FAILED, error="the worker process died (killed or out of memory)")
    except RayTaskError as err:
        cause = err.cause
        message = str(cause) if isinstance(cause, DigitLabError) else f"{type(cause).__name__}: {cause}"
        final = _task(task_id, entry, state=FAILED, error=message)
    except DigitLabError as err:  # the server could not keep the result
        final = _task(task_id, entry, state=FAILED, error=f"could not save the result: {err}")
    except (RayError, GetTimeoutError, OSError) as err:
        final = _task(task_id, entry, state=FAILED, error=f"{type(err).__name__}: {err}")
    with _lock:
        if entry.final is None:  # a cancel may have closed it meanwhile
            entry.final = final
            entry.payload = None  # its bytes are of no use any more
    board().forget.remote(task_id)


def _ensure_pumper() -> None:
    """The daemon thread that keeps starting and collecting while any task is not closed."""
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
            if all(e.final is not None for e in _tasks.values()):
                _pumper = None
                return
        try:
            _pump()
        except Exception:  # a lost cluster must not end the loop silently for ever
            log.exception("background tasks: a round failed")


__all__ = ["ACTIVE", "FAILED", "FINISHED", "QUEUED", "RUNNING", "STOPPED", "Progress", "Task", "TaskKind",
           "cancel", "follow", "run_task", "slots", "submit", "wait"]
