"""The submitting process's ``DIGITLAB_*`` settings, carried into a background task.

A Ray worker process is started once and reused, so its environment is the one Ray started with;
a task that reads datasets or runs must see the folders of the server that submitted it (and a
test's temporary folders). :func:`current` captures them; :func:`applied` sets them in the worker
for the duration of one task (a worker runs one task at a time).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

PREFIX = "DIGITLAB_"


def current() -> dict[str, str]:
    """This process's ``DIGITLAB_*`` environment variables."""
    return {k: v for k, v in os.environ.items() if k.startswith(PREFIX)}


@contextmanager
def applied(env: Mapping[str, str] | None) -> Iterator[None]:
    """Within the block, exactly ``env``'s ``DIGITLAB_*`` variables are set (None: leave as is)."""
    if env is None:
        yield
        return
    saved = current()
    try:
        for key in saved:
            os.environ.pop(key, None)
        os.environ.update({k: str(v) for k, v in env.items() if k.startswith(PREFIX)})
        yield
    finally:
        for key in current():
            os.environ.pop(key, None)
        os.environ.update(saved)
