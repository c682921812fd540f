"""Long background tasks on Ray (label searches, embedding maps, evaluations...): submit, poll, cancel.

``submit(fn, *args, kind=..., owner=...)`` runs ``fn(*args, progress=..., **kwargs)`` on a Ray
worker and returns a task id; ``get(id)`` says where it is (queued, running, finished with its
result, failed with a message, stopped) with the latest ``progress(fraction, text)`` it reported;
``cancel(id)`` stops it. Progress travels through one named actor (:class:`TaskBoard`), so a task
on another node reports without any shared filesystem. Task ids live in this process: a task
belongs to the server (or CLI) that submitted it.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError, TaskCancelledError, WorkerCrashedError

from core.execution import cluster
from core.errors import DigitLabError

QUEUED, RUNNING, FINISHED, FAILED, STOPPED = "queued", "running", "finished", "failed", "stopped"
BOARD_NAME = "digitlab-task-board"
#: Seconds between two progress messages a task actually sends (the latest one always wins).
PROGRESS_INTERVAL_S = 0.2


@dataclass(frozen=True)
class Task:
    """What is known about one background task."""

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
        return self.state in (QUEUED, RUNNING)


@ray.remote(num_cpus=0)
class TaskBoard:
    """Latest (started, fraction, text) per task id, pushed by the tasks themselves."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[bool, float, str]] = {}

    def report(self, task_id: str, fraction: float, text: str) -> None:
        self.states[task_id] = (True, float(fraction), str(text))

    def read(self, task_ids: list[str]) -> dict[str, tuple[bool, float, str]]:
        return {t: self.states[t] for t in task_ids if t in self.states}

    def forget(self, task_id: str) -> None:
        self.states.pop(task_id, None)


def board() -> Any:
    """The task board actor (created on first use; on a cluster it outlives a server restart)."""
    cluster.connect()
    return TaskBoard.options(name=BOARD_NAME, namespace=cluster.NAMESPACE, get_if_exists=True,
                             lifetime="detached" if cluster.is_remote() else None).remote()


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
def _run(task_id: str, board_handle: Any, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    progress = _Progress(task_id, board_handle)
    ray.get(board_handle.report.remote(task_id, 0.0, "started"))  # marks it running
    return fn(*args, progress=progress, **kwargs)


@dataclass
class _Entry:
    kind: str
    owner: str | None
    ref: Any
    submitted: float
    cancelled: bool = False
    final: Task | None = None


_tasks: dict[str, _Entry] = {}
_lock = threading.Lock()


def submit(fn: Callable[..., Any], *args: Any, kind: str, owner: str | None = None,
           cpus: float = 1.0, **kwargs: Any) -> str:
    """Run ``fn(*args, progress=<callable(fraction, text)>, **kwargs)`` on a Ray worker with ``cpus``
    CPUs; return the task's id. ``fn`` and its arguments must be picklable (a module-level
    function), and so must its return value, which becomes the task's result."""
    if not callable(fn):
        raise DigitLabError(f"a task runs a function, not {type(fn).__name__}")
    handle = board()
    task_id = secrets.token_hex(8)
    ref = _run.options(num_cpus=cpus, name=f"{kind}:{task_id}").remote(task_id, handle, fn, args, kwargs)
    with _lock:
        _tasks[task_id] = _Entry(kind, owner, ref, time.time())
    return task_id


def get(task_id: str) -> Task:
    """The task's state; DigitLabError for an id this process did not submit."""
    with _lock:
        entry = _tasks.get(task_id) if isinstance(task_id, str) else None
    if entry is None:
        raise DigitLabError(f"no task {str(task_id)[:40]!r} (unknown here, or from before a restart)")
    if entry.final is not None:
        return entry.final
    base = dict(id=task_id, kind=entry.kind, owner=entry.owner, submitted=entry.submitted)
    ready, _ = ray.wait([entry.ref], timeout=0)
    if ready:
        final = _ended(entry, base)
        entry.final = final
        board().forget.remote(task_id)
        return final
    if entry.cancelled:
        return Task(state=STOPPED, **base)
    seen = ray.get(board().read.remote([task_id]))
    if task_id not in seen:
        return Task(state=QUEUED, text="waiting for a free CPU", **base)
    _, fraction, text = seen[task_id]
    return Task(state=RUNNING, fraction=fraction, text=text, **base)


def _ended(entry: _Entry, base: dict[str, Any]) -> Task:
    try:
        result = ray.get(entry.ref, timeout=10)
    except TaskCancelledError:
        return Task(state=STOPPED, **base)
    except WorkerCrashedError:
        state = STOPPED if entry.cancelled else FAILED
        return Task(state=state, error=None if entry.cancelled else "the worker process died (killed or out of memory)",
                    **base)
    except RayTaskError as err:
        if entry.cancelled:
            return Task(state=STOPPED, **base)
        cause = err.cause
        message = str(cause) if isinstance(cause, DigitLabError) else f"{type(cause).__name__}: {cause}"
        return Task(state=FAILED, error=message, **base)
    except (RayError, GetTimeoutError) as err:
        return Task(state=STOPPED if entry.cancelled else FAILED, error=None if entry.cancelled else str(err), **base)
    return Task(state=FINISHED, fraction=1.0, text="done", result=result, **base)


def cancel(task_id: str) -> None:
    """Stop the task: a queued one never starts, a running one's worker is ended at once."""
    with _lock:
        entry = _tasks.get(task_id) if isinstance(task_id, str) else None
    if entry is None:
        raise DigitLabError(f"no task {str(task_id)[:40]!r} (unknown here, or from before a restart)")
    if entry.final is not None:
        return
    entry.cancelled = True
    ray.cancel(entry.ref, force=True)


def wait(task_id: str, timeout: float | None = None, poll: float = 0.1) -> Task:
    """Poll until the task ends (or ``timeout`` seconds pass); return its last state."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        task = get(task_id)
        if not task.active or (deadline is not None and time.monotonic() > deadline):
            return task
        time.sleep(poll)
