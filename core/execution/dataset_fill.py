"""Drawing the default dataset's cache in the background, so a first page needs not wait for it.

On a fresh machine the full synthetic default (70,000 images) takes about 12 s to draw. A page can
instead open on the tiny size (drawn in a fraction of a second) while a background task
(core.execution.tasks, kind :data:`DRAW_TASK`) draws the full one on a Ray worker and returns the
arrays, which this server writes into its cache (atomically: ``synthetic.save_cache``, so a
reader never sees half a file, even if two servers draw it at once); :func:`fill_state` tells
when it is there. One task per cache file per server process: every session asking for the same
size shares it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

from core.datasets.dataset import Dataset
from core.datasets.synthetic import SIZES, cache_path, generate, save_cache
from core.errors import DigitLabError
from core.execution import tasks
from core.states import Progress

#: The size a page shows while a bigger default size is drawn in the background.
FIRST_SIZE = "tiny"
_filling: dict[Path, str] = {}  # cache file -> id of the task drawing it
_lock = threading.Lock()

FillState = Literal["cached", "filling", "failed"]


def draw(request: tuple[str, str], progress: Progress) -> Dataset:
    """On a worker: the default dataset at ``size`` (the request is (size, cache file))."""
    size, _ = request
    progress(0.0, f"drawing the default dataset ({size})")
    return generate(*SIZES[size])


def keep(request: tuple[str, str], ds: Dataset) -> str:
    """On the server: write the drawn dataset into the cache file; its path."""
    save_cache(ds, Path(request[1]))
    return request[1]


#: The background task kind: the worker draws, the server caches.
DRAW_TASK = tasks.TaskKind("default-dataset", draw, keep)


def fill_state(size: str, cache_dir: Path | None = None) -> FillState:
    """Whether the default dataset at ``size`` is cached, being drawn in the background, or could
    not be (its task ended without the cache written: a full disk, an unwritable folder)."""
    path = cache_path(size, cache_dir)
    if path.is_file():
        return "cached"
    with _lock:
        task_id = _filling.get(path)
    if task_id is None:
        return "failed"
    return "filling" if tasks.follow(task_id).active else ("cached" if path.is_file() else "failed")


def fill_in_background(size: str, cache_dir: Path | None = None) -> FillState:
    """Start drawing and caching the default dataset at ``size`` as a background task, unless it
    is cached or under way; returns :func:`fill_state` afterwards.

    A task rather than a thread: drawing holds the interpreter for seconds, which would stall
    every session's page runs. It is started once; after a failure (or when Ray cannot start)
    the caller loads the size in its own process as before, which gives the error its due place.
    """
    path = cache_path(size, cache_dir)
    with _lock:
        if not path.is_file() and path not in _filling and size in SIZES:
            try:
                _filling[path] = tasks.submit(DRAW_TASK, (size, str(path)))
            except DigitLabError:
                return "failed"
    return fill_state(size, cache_dir)


def opening_spec(size: str) -> tuple[str, str | None]:
    """(the default dataset spec a new session opens on, the spec it switches to once drawn): the
    default at ``size``, or, on a fresh machine where that size is not cached yet, the default at
    ``FIRST_SIZE`` at once while ``size`` is drawn in the background."""
    from core.datasets.specs import DatasetSpec

    if size != FIRST_SIZE and fill_in_background(size) == "filling":
        return str(DatasetSpec("default", FIRST_SIZE)), str(DatasetSpec("default", size))
    return str(DatasetSpec("default", size)), None


def settle_opening(current: str, pending: str) -> tuple[str, bool]:
    """(the spec to show now, whether ``pending`` is still awaited) for a session that opened on the
    first size while ``pending`` is drawn: someone who chose another dataset meanwhile keeps it; the
    drawn size replaces the first once it is there (a failed drawing too: it is then loaded in the
    session's process, which gives the error its place)."""
    from core.datasets.specs import DatasetSpec

    if current != str(DatasetSpec("default", FIRST_SIZE)):
        return current, False
    if fill_state(DatasetSpec.parse(pending).size) != "filling":
        return pending, False
    return current, True


def wait_for_fill(size: str, cache_dir: Path | None = None, timeout: float | None = None) -> FillState:
    """Wait until the background drawing of ``size`` ends (for scripts and tests)."""
    path = cache_path(size, cache_dir)
    with _lock:
        task_id = _filling.get(path)
    if task_id is not None:
        tasks.wait(task_id, timeout)
    return fill_state(size, cache_dir)
