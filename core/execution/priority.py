"""Background work yields the cores to the pages, and runs and tasks share the rest evenly.

Every Ray worker that trains a run or does a task runs at one CPU priority, at least
DIGITLAB_TRAINING_NICE below the server's, so a page's work (the Preprocess preview) comes first.
A level, not a step: Ray's raylet already starts its workers at niceness 15 (``RAY_worker_niceness``),
and a step of 10 on top put runs at 19 beside tasks at 15, where a run got less than half a task's
share of the cores and took six to ten times as long as the wait estimates (core.runs.eta) said.
"""

from __future__ import annotations

import os

#: The least niceness of background work (DIGITLAB_TRAINING_NICE; 0: the server's own).
TRAINING_NICE = 10


def yield_to_pages() -> None:
    """Bring this thread's niceness up to DIGITLAB_TRAINING_NICE if it is below (Linux sets it
    per thread: call it before TensorFlow makes its thread pools, which inherit it). A worker
    already that low or lower is left as it is; so is one where the setting is odd or the
    system forbids it."""
    try:
        target = int(os.environ.get("DIGITLAB_TRAINING_NICE", TRAINING_NICE))
        current = os.nice(0)
        if target > current:
            os.nice(target - current)
    except (ValueError, OSError):
        pass
