"""The states of background work and the progress type, declared once for runs and tasks.

A training run (core.runs.store), a task of any kind (core.execution.tasks) and a label search
(core.labels.search) all move through the same states: queued, running, then finished, stopped
or failed. Long work reports how far it is with one callable, :data:`Progress`.
"""

from __future__ import annotations

from collections.abc import Callable

QUEUED, RUNNING, FINISHED, STOPPED, FAILED = "queued", "running", "finished", "stopped", "failed"
#: Work not ended yet.
ACTIVE = (QUEUED, RUNNING)
STATES = (QUEUED, RUNNING, FINISHED, STOPPED, FAILED)

#: progress(fraction done in 0..1, what is happening now).
Progress = Callable[[float, str], None]
