"""Estimated start times of queued runs, from how long recent runs of the same kind took.

A run's expected duration is the median wall time per epoch of the last finished runs with the
same preset on the same dataset spec (which names the data size), times its epochs. Queued runs
are then laid out in their start order over the slots busy now, each taking the slot that frees
first. A run with no comparable history (and every run behind it) gets no estimate.
"""
from __future__ import annotations

import heapq
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Finished runs of one (preset, dataset) considered.
RECENT = 5


@dataclass(frozen=True)
class Past:
    """A finished run's kind and pace."""

    preset: str
    dataset: str
    seconds_per_epoch: float


@dataclass(frozen=True)
class Pending:
    """A queued or running run: its kind, epochs, and start time if running."""

    id: str
    preset: str
    dataset: str
    epochs: int
    started: float | None = None


def seconds_per_epoch(history: Sequence[Past]) -> dict[tuple[str, str], float]:
    """(preset, dataset) -> median seconds per epoch over its ``RECENT`` latest runs (newest first)."""
    seen: dict[tuple[str, str], list[float]] = {}
    for past in history:
        bucket = seen.setdefault((past.preset, past.dataset), [])
        if len(bucket) < RECENT:
            bucket.append(past.seconds_per_epoch)
    return {key: statistics.median(values) for key, values in seen.items()}


def estimated_starts(running: Sequence[Pending], queued: Sequence[Pending],
                     pace: Mapping[tuple[str, str], float], now: float | None = None) -> dict[str, float | None]:
    """Queued run id -> estimated start (a Unix time), or None where history is missing.

    ``queued`` is in start order; the slots are those of ``running`` (at least one).
    """
    now = time.time() if now is None else now
    frees: list[float] = []
    for run in running:
        per = pace.get((run.preset, run.dataset))
        if per is None:
            return {q.id: None for q in queued}
        frees.append(max(now, (run.started or now) + per * run.epochs))
    if not frees:
        frees = [now]
    heapq.heapify(frees)
    out: dict[str, float | None] = {}
    for i, run in enumerate(queued):
        per = pace.get((run.preset, run.dataset))
        if per is None:
            out.update({q.id: None for q in queued[i:]})
            break
        start = heapq.heappop(frees)
        out[run.id] = start
        heapq.heappush(frees, start + per * run.epochs)
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
