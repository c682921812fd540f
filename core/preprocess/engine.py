"""Running steps over a whole dataset: input checks, chunks, and a small thread pool.

The dataset is cut into chunks of CHUNK images; each chunk becomes one Batch (a few MB) that all
steps update in place before it is decoded into the float32 output. Memory stays at the output
array plus a few chunk buffers, which each thread reuses from chunk to chunk. Chunks run on
WORKERS threads: OpenCV and most numpy loops release the GIL.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from core.errors import DigitLabError
from core.preprocess.batch import SIDE, Batch, Workspace

CHUNK = 2048
WORKERS = 2


class RunnableStep(Protocol):
    """What the engine needs from a step (core.preprocess.steps.Step provides it)."""

    @property
    def pad(self) -> int: ...

    def run(self, batch: Batch, labels: np.ndarray | None) -> None: ...


def check_images(x: object) -> np.ndarray:
    """x as an (N, 28, 28) array: uint8 stays uint8 (the fast path), other real types become float32."""
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[1:] != (SIDE, SIDE):
        shape = getattr(x, "shape", type(x).__name__)
        raise DigitLabError(f"images must be an array of shape (N, 28, 28), got {shape}")
    if x.dtype == np.uint8:
        return x
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DigitLabError(f"images must hold numbers, got dtype {x.dtype}")
    return x.astype(np.float32, copy=False)


def check_labels(y: object, n: int) -> np.ndarray:
    """y as a 1-D integer array of n labels."""
    if not isinstance(y, np.ndarray) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DigitLabError(f"labels must be a 1-D integer array, got {getattr(y, 'dtype', type(y).__name__)}")
    if len(y) != n:
        raise DigitLabError(f"{n} images but {len(y)} labels")
    return y


def run_steps(
    steps: Sequence[RunnableStep],
    x: np.ndarray,
    y: np.ndarray | None = None,
    chunk: int = CHUNK,
    workers: int = WORKERS,
) -> np.ndarray:
    """New float32 (N, 28, 28) images: x (checked by check_images) through ``steps`` in order.

    ``y`` goes to the steps that need labels; x itself is never modified.
    """
    out = np.empty((len(x), SIDE, SIDE), np.float32)
    if not steps:
        out[...] = x
        return out
    pad = max(step.pad for step in steps)
    workspaces: dict[int, Workspace] = {}  # one per thread, dropped when the call ends

    def work(start: int) -> None:
        stop = min(start + chunk, len(x))
        workspace = workspaces.setdefault(threading.get_ident(), Workspace())
        batch = Batch.from_images(x[start:stop], pad, workspace)
        labels = None if y is None else y[start:stop]
        for step in steps:
            step.run(batch, labels)
        batch.write_into(out[start:stop])

    starts = range(0, len(x), chunk)
    if len(starts) <= 1 or workers <= 1:
        for start in starts:
            work(start)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, starts))
    return out


def run_steps_stepwise(
    steps: Sequence[RunnableStep], x: np.ndarray, y: np.ndarray | None = None
) -> list[np.ndarray | None]:
    """For a small x: the images after each step (None for a step that needs labels when y is None:
    it is skipped). One batch carries through, so this costs about one run_steps call."""
    pad = max((step.pad for step in steps), default=0)
    batch = Batch.from_images(x, pad)
    results: list[np.ndarray | None] = []
    for step in steps:
        if getattr(step, "TRAINING_ONLY", False) and y is None:
            results.append(None)
            continue
        step.run(batch, y)
        results.append(batch.images())
    return results
