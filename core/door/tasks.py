"""``lab.tasks``: following and cancelling the caller's background work, and how long it takes."""

from __future__ import annotations

import time
from collections.abc import Callable

from core.classroom.access import can_act
from core.door.context import Context
from core.door.runs import Runs
from core.errors import DigitLabError
from core.execution import tasks
from core.labels import search as label_search


class Tasks:
    """The caller's background work (staff: anyone's): a task id (a search, a map, an evaluation,
    a challenge's scoring) or a run id (a training or grid run); someone else's reads as missing."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._runs = Runs(ctx)

    def follow(self, task_id: str) -> tasks.Task:
        """A piece of the caller's background work (staff: anyone's): a task id (a search, a map,
        an evaluation) or a run id (a training or grid run); someone else's reads as missing."""
        if isinstance(task_id, str) and len(task_id) == 8:
            try:
                return tasks.run_task(self._runs.get(task_id))
            except DigitLabError:
                raise DigitLabError(f"no task {task_id!r} (unknown here, or from before a restart)") from None
        task = tasks.follow(task_id)
        if not can_act(self._ctx.who, task.owner):
            raise DigitLabError(f"no task {str(task_id)[:40]!r} (unknown here, or from before a restart)")
        return task

    def cancel(self, task_id: str) -> None:
        """Stop one of the caller's background tasks, or one of their runs by its id."""
        if isinstance(task_id, str) and len(task_id) == 8:
            self.follow(task_id)
            self._runs.stop(task_id)
            return
        self.follow(task_id)
        tasks.cancel(task_id)

    def wait(
        self,
        task_id: str,
        on_progress: Callable[[tasks.Task], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.2,
    ) -> tasks.Task:
        """Follow one of the caller's background tasks until it ends; ``on_progress(task)`` after each look."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            task = self.follow(task_id)
            if on_progress is not None:
                on_progress(task)
            if not task.active or (deadline is not None and time.monotonic() > deadline):
                return task
            time.sleep(poll)

    def typical_seconds(self, kind: str) -> float | None:
        """How long background work of ``kind`` ("label-search", "embedding-map", ...) took on this
        lab lately (None: not done here yet): what pages announce before it starts."""
        return tasks.typical_seconds(kind)

    def expected_search_seconds(self, images: int, folds: int) -> tuple[float, bool]:
        """(seconds, measured) a label search of ``images`` with ``folds`` folds should take: as
        searches took on this lab lately (measured), else the formula from a reference machine."""
        measured = tasks.typical_seconds(label_search.SEARCH_TASK.name)
        if measured is not None:
            return measured, True
        return label_search.estimate_search_seconds(images, folds), False
