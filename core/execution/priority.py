"""Background work yields the cores to the pages, and runs and tasks share the rest evenly.

Every Ray worker that trains a run or does a task runs at one CPU priority, DIGITLAB_TRAINING_NICE
(10) below the server's, so a page's work (the Preprocess preview) comes first. A Ray the lab
starts (its own local one, ``make ray``) starts its workers at that level (Ray's
``worker_niceness``, 15 unless told); a worker of a Ray started elsewhere is brought up to it when
it takes its first job, never lowered past where it is. A step on top of Ray's own level put runs
at 19 beside tasks at 15, where a run got less than half a task's share of the cores and took six
to ten times as long as the wait estimates (core.runs.eta) said.
"""

from __future__ import annotations

import os

#: The niceness of background work (DIGITLAB_TRAINING_NICE; 0: the server's own).
TRAINING_NICE = 10


def worker_level() -> int:
    """DIGITLAB_TRAINING_NICE, or TRAINING_NICE when unset or odd; within 0..19."""
    try:
        return min(max(int(os.environ.get("DIGITLAB_TRAINING_NICE", TRAINING_NICE)), 0), 19)
    except ValueError:
        return TRAINING_NICE


def yield_to_pages() -> None:
    """Bring this thread's niceness up to :func:`worker_level` if it is below (Linux sets it per
    thread: call it before TensorFlow makes its thread pools, which inherit it). A worker already
    that low or lower is left as it is; so is one where the system forbids it."""
    try:
        current = os.nice(0)
        if worker_level() > current:
            os.nice(worker_level() - current)
    except OSError:
        pass
