"""Generating the default dataset's cache in the background, so a first page needs not wait for it.

On a fresh machine the full synthetic default (70,000 images) takes about 12 s to draw. A page can
instead open on the tiny size (drawn in a fraction of a second) while a separate process draws and
caches the full one; :func:`fill_state` tells when it is there. One process per cache file per
server process: every session asking for the same size shares it. The cache is written atomically
(``synthetic._save``), so a reader never sees half a file, even if two servers draw it at once.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Literal

from core.datasets.synthetic import SIZES, cache_path

#: The size a page shows while a bigger default size is drawn in the background.
FIRST_SIZE = "tiny"
_ROOT = Path(__file__).resolve().parents[2]
_filling: dict[Path, subprocess.Popen] = {}
_lock = threading.Lock()

FillState = Literal["cached", "filling", "failed"]


def fill_state(size: str, cache_dir: Path | None = None) -> FillState:
    """Whether the default dataset at ``size`` is cached, being drawn in the background, or could
    not be (its process ended without writing the cache: a full disk, an unwritable folder)."""
    path = cache_path(size, cache_dir)
    with _lock:
        if path.is_file():
            return "cached"
        proc = _filling.get(path)
        if proc is None:
            return "failed"
        return "filling" if proc.poll() is None else "failed"


def fill_in_background(size: str, cache_dir: Path | None = None) -> FillState:
    """Start drawing and caching the default dataset at ``size`` in a separate process, unless it
    is cached or under way; returns :func:`fill_state` afterwards.

    A process rather than a thread: drawing holds the interpreter for seconds, which would stall
    every session's page runs. It is started once; after a failure the caller loads the size in
    its own process as before (``load_ready``), which gives the error its due place.
    """
    path = cache_path(size, cache_dir)
    with _lock:
        if not path.is_file() and path not in _filling and size in SIZES:
            code = ("import sys; from pathlib import Path; from core.datasets.synthetic import default_dataset; "
                    "default_dataset(sys.argv[1], Path(sys.argv[2]))")
            _filling[path] = subprocess.Popen(
                [sys.executable, "-c", code, size, str(path.parent.parent)], cwd=_ROOT,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return fill_state(size, cache_dir)


def wait_for_fill(size: str, cache_dir: Path | None = None, timeout: float | None = None) -> FillState:
    """Wait until the background drawing of ``size`` ends (for scripts and tests)."""
    path = cache_path(size, cache_dir)
    with _lock:
        proc = _filling.get(path)
    if proc is not None:
        proc.wait(timeout)
    return fill_state(size, cache_dir)
