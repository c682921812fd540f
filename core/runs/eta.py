"""Estimated start times of queued runs, from how the queue drains on this instance.

Each kind of run (preset, dataset spec, which names the data size) has a measured :class:`Pace`:
the median training seconds per epoch of its latest finished runs, and the least wall time they
spent outside their epochs (the worker picking the run up, loading data, predicting and saving).
A running run frees its slot after its remaining epochs at that pace (its own pace once it has
reported epochs); queued runs then take, in their fair-share start order, the slot that frees
first, free slots at once. A run with no comparable history (and every run behind it) gets no
estimate rather than a made-up one.

Runs and tasks share the machine's cores: a job measured while three others ran took longer than
it would alone, and a job queued behind a burst will share the cores again. So each past job
carries its *load* (how many jobs, itself included, ran on average while it did, from the job
table's intervals), paces are brought back to an unloaded machine by the slowdown that load
caused, and estimates use the slowdown of the load expected now (:func:`slowdown`).
"""

from __future__ import annotations

import heapq
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Finished runs of one (preset, dataset) considered.
RECENT = 5
#: Of a run's time outside its epochs, the part after its last epoch (predicting, saving, collecting).
TAIL_SHARE = 0.3


@dataclass(frozen=True)
class Past:
    """A finished run's kind, its training seconds per epoch and its wall time outside epochs."""

    preset: str
    dataset: str
    seconds_per_epoch: float
    overhead: float = 0.0
    load: float = 1.0  # jobs running on average while it ran, itself included


@dataclass(frozen=True)
class Pace:
    """How long one kind of run takes here: per epoch, and once outside its epochs."""

    per_epoch: float
    overhead: float = 0.0

    def duration(self, epochs: int) -> float:
        """Wall time of a whole run of ``epochs`` epochs."""
        return self.overhead + self.per_epoch * epochs

    def times(self, factor: float) -> Pace:
        """This pace ``factor`` times slower."""
        return Pace(self.per_epoch * factor, self.overhead * factor)


def slowdown(load: float, capacity: int) -> float:
    """How many times slower a job runs among ``load`` jobs (itself included) on a machine where
    ``capacity`` jobs run at full speed at once (one pool's slots: each pool is sized to the cores)."""
    return max(1.0, load / max(capacity, 1))


def mean_load(start: float, end: float, intervals: Sequence[tuple[float, float]]) -> float:
    """Jobs running on average over [start, end], from every job's (started, ended) interval, the
    job itself among them (at least 1)."""
    span = end - start
    if span <= 0:
        return 1.0
    busy = sum(max(0.0, min(e, end) - max(s, start)) for s, e in intervals)
    return max(1.0, busy / span)


def expected_load(active: Mapping[str, int], slots: int) -> float:
    """Jobs that will run at once while the queues drain: each pool's active (running and queued)
    jobs up to its slots, ``active`` by pool; at least 1."""
    return max(1.0, float(sum(min(n, slots) for n in active.values())))


@dataclass(frozen=True)
class Pending:
    """A queued or running run: its kind, epochs, start time, and epochs done so far if running."""

    id: str
    preset: str
    dataset: str
    epochs: int
    started: float | None = None
    epochs_done: int = 0
    epoch_seconds: float | None = None  # its own measured seconds per epoch, once it has some


def paces(history: Sequence[Past], capacity: int = 1) -> dict[tuple[str, str], Pace]:
    """(preset, dataset) -> median pace over its ``RECENT`` latest runs (history newest first), on an
    unloaded machine: each run's figures divided by the slowdown its load caused (``capacity``:
    see :func:`slowdown`)."""
    seen: dict[tuple[str, str], list[Past]] = {}
    for past in history:
        bucket = seen.setdefault((past.preset, past.dataset), [])
        if len(bucket) < RECENT:
            bucket.append(past)
    # The least overhead, not the median: a cold start (a worker's first TensorFlow import, a dataset
    # drawn the first time) happens once per worker, and the queue's next runs start on warm ones.
    alone = {key: [(p, slowdown(p.load, capacity)) for p in runs] for key, runs in seen.items()}
    return {
        key: Pace(
            statistics.median(p.seconds_per_epoch / f for p, f in runs), min(max(0.0, p.overhead) / f for p, f in runs)
        )
        for key, runs in alone.items()
    }


def _frees_at(run: Pending, pace: Pace, now: float) -> float:
    """When a running run will end (its remaining epochs at its own pace if measured)."""
    per = run.epoch_seconds or pace.per_epoch
    if run.epochs_done <= 0:
        return max(now, (run.started or now) + pace.overhead + per * run.epochs)
    return now + per * max(run.epochs - run.epochs_done, 0) + TAIL_SHARE * pace.overhead


def estimated_starts(
    running: Sequence[Pending],
    queued: Sequence[Pending],
    pace: Mapping[tuple[str, str], Pace],
    slots: int | None = None,
    now: float | None = None,
    factor: float = 1.0,
) -> dict[str, float | None]:
    """Queued run id -> estimated start (a Unix time), or None where history is missing.

    ``queued`` is in start order; ``slots`` is how many runs train at once (default: as many as
    run now, at least one), so free slots start the first queued runs at once. ``pace`` is the
    unloaded machine's (:func:`paces`), ``factor`` the slowdown expected now; a running run that
    has reported epochs keeps its own measured pace.
    """
    now = time.time() if now is None else now
    pace = {key: kind.times(factor) for key, kind in pace.items()}
    frees: list[float] = []
    for run in running:
        kind = pace.get((run.preset, run.dataset))
        if kind is None and run.epoch_seconds is None:
            return {q.id: None for q in queued}
        frees.append(_frees_at(run, kind or Pace(run.epoch_seconds or 0.0), now))
    frees += [now] * max((slots or 0) - len(running), 0 if frees else 1)
    heapq.heapify(frees)
    out: dict[str, float | None] = {}
    for i, run in enumerate(queued):
        kind = pace.get((run.preset, run.dataset))
        if kind is None:
            out.update({q.id: None for q in queued[i:]})
            break
        start = heapq.heappop(frees)
        out[run.id] = start
        heapq.heappush(frees, start + kind.duration(run.epochs))
    return out


def start_text(when: float | None, now: float | None = None) -> str:
    """``starts in about 40 s`` / ``about 3 min`` / ``start time unknown (no finished run like it yet)``."""
    if when is None:
        return "start time unknown (no finished run like it yet)"
    wait = max(0.0, when - (time.time() if now is None else now))
    if wait < 5:
        return "starts in a few seconds"
    if wait < 90:
        return f"starts in about {wait:.0f} s"
    return f"starts in about {wait / 60:.0f} min"
