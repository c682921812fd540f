"""One click, one run: a launch asked for twice is made once.

* :class:`RecentLaunches`: a training request a browser session repeats with the same form (a
  second click on Train while the first is still being queued, a click replayed on a reconnect)
  within ``WINDOW_S`` seconds is recognised by its key (the person, the session, the form: an
  idempotency key) and answered with the run the first one made.
* :func:`claim_requeue` / :func:`requeued_as`: a failed or stopped run is queued again once (the
  store's ``requeues`` table, so every replica and a restart agree): a second "Queue again", by its
  student or the teacher, finds the first one's run instead of a third copy.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy import exc as sa_exc

from core.errors import DigitLabError
from core.settings import settings
from core.store import database
from core.store.schema import requeues

#: How long a launch is remembered: a repeat within it is the same click.
WINDOW_S = 30.0


def request_key(*parts: Any) -> str:
    """An idempotency key from ``parts`` (owner, session, the form's values as plain JSON)."""
    text = json.dumps(
        [p if isinstance(p, (str, int, float, bool, type(None))) else repr(p) for p in parts],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class RecentLaunches:
    """The launches of this process's last ``window`` seconds, by request key. A browser session
    talks to one server process, so its repeated clicks all land here."""

    def __init__(self, window: float = WINDOW_S) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._keys: dict[str, threading.Lock] = {}
        self._made: dict[str, tuple[str, float]] = {}

    def once(self, key: str, launch: Callable[[], str], now: Callable[[], float] = time.monotonic) -> tuple[str, bool]:
        """(run id, True) after ``launch()``; (the first one's run id, False) when ``key`` was launched
        within the window, or is being launched right now (the repeat waits for it)."""
        with self._lock:
            for old in [k for k, (_, at) in self._made.items() if now() - at > self.window]:
                del self._made[old]
            lock = self._keys.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if (made := self._made.get(key)) is not None and now() - made[1] <= self.window:
                    return made[0], False
            run_id = launch()  # a failure raises: nothing remembered, the next click tries again
            with self._lock:
                self._made[key] = (run_id, now())
                if len(self._keys) > 1000:
                    self._keys = {k: v for k, v in self._keys.items() if k in self._made or v is lock}
            return run_id, True


#: This process's launches (``lab.runs.start_once``, core.door.runs, with a request key).
RECENT = RecentLaunches()


class AlreadyRequeued(DigitLabError):
    """The run was queued again already (``new_run``; "" while that is under way)."""

    def __init__(self, run_id: str, new_run: str) -> None:
        super().__init__(
            f"run {run_id} was already queued again" + (f", as run {new_run}" if new_run else " a moment ago")
        )
        self.run_id, self.new_run = run_id, new_run


def requeued_as(run_ids: Iterable[str]) -> dict[str, str]:
    """{run id: the run it was queued again as ("" while being queued)} for those of ``run_ids`` that were."""
    ids = list(run_ids)
    if not ids:
        return {}
    with database(settings().run_root).read() as conn:
        rows = conn.execute(select(requeues.c.run_id, requeues.c.new_run).where(requeues.c.run_id.in_(ids))).all()
    return {row.run_id: row.new_run for row in rows}


def claim_requeue(run_id: str, by: str, submit: Callable[[], str]) -> str:
    """Queue ``run_id`` again through ``submit()`` unless it was already (AlreadyRequeued): the claim
    is a row of ``requeues``, inserted first, so two clicks racing on two replicas make one run."""
    db = database(settings().run_root)
    try:
        with db.write(lock=f"requeue:{run_id}") as conn:
            if (row := conn.execute(select(requeues.c.new_run).where(requeues.c.run_id == run_id)).first()) is not None:
                raise AlreadyRequeued(run_id, row.new_run)
            conn.execute(insert(requeues).values(run_id=run_id, new_run="", by=by, at=time.time()))
    except sa_exc.IntegrityError:
        raise AlreadyRequeued(run_id, requeued_as([run_id]).get(run_id, "")) from None
    try:
        new_run = submit()
    except BaseException:
        with db.write() as conn:  # not queued after all: the button comes back
            conn.execute(delete(requeues).where(requeues.c.run_id == run_id))
        raise
    with db.write() as conn:
        conn.execute(update(requeues).where(requeues.c.run_id == run_id).values(new_run=new_run))
    return new_run
