"""What the resources of one ``Lab`` share: who is asking, and the run queue and its view of the
runs, both made on first use (a ``Lab`` that only checks a dataset starts no dispatcher)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from core.classroom.access import Identity
from core.classroom.limits import limits
from core.classroom.run_access import RunView
from core.door.engine import engine
from core.errors import DigitLabError
from core.execution import tasks
from core.execution.queue import JobQueue
from core.runs.store import FINISHED, Run
from core.settings import settings


class PrivateData(DigitLabError):
    """A published run's data that publishing does not share (its owner's own upload)."""


class Context:
    """One caller's share of the lab, private to the door: the resources read the queue, the
    view and the store through it, and none of them hands these out."""

    def __init__(self, who: Identity, jobs: JobQueue | None = None) -> None:
        self.who = who
        self._given = jobs

    @cached_property
    def queue(self) -> JobQueue:
        """The run queue the door uses (the process's engine unless one was given)."""
        return self._given if self._given is not None else engine()

    @cached_property
    def view(self) -> RunView:
        """The caller's view of the runs."""
        return RunView(self.queue.store, self.who, self.queue)

    def root(self) -> Path:
        """Where the lab keeps its runs and database, without starting the engine for it."""
        return Path(self._given.store.root) if self._given is not None else Path(settings().run_root)

    def staff_only(self, doing: str) -> None:
        """DigitLabError unless the caller is staff (access's identity says so)."""
        if not self.who.staff:
            raise DigitLabError(f"only a teacher can {doing}")

    def finished_run(self, run_id: str) -> Run:
        """A visible run with a model ("no run <id>" when not the caller's to see)."""
        run = self.view.get(run_id)
        if run.status != FINISHED or run.broken:
            raise DigitLabError(f"run {run_id} has no model yet: it is {run.status}")
        return run

    def task_cap(self) -> int | None:
        """How many of the caller's background tasks may run at once (the classroom's rule)."""
        return None if self.who.staff else limits().max_running_per_owner

    def submit_task(self, kind: tasks.TaskKind, payload: Any) -> str:
        """Start background work of ``kind`` owned by the caller; its task id."""
        return tasks.submit(kind, payload, owner=self.who.key, running_per_owner=self.task_cap())
