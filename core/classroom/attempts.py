"""Wrong sign-in codes, counted per client and per typed name in the lab's store (every replica
shares the count), so the class and teacher codes cannot be guessed at speed.

After :data:`FREE` wrong codes within :data:`WINDOW_S` seconds from one client (or for one name),
every further attempt from it is refused, right code or not, for a delay that doubles with each
such block (:data:`FIRST_BLOCK_S`, then twice that, ... up to :data:`MAX_BLOCK_S`). A right code
outside a block clears the name's count. Wrong attempts are logged without the code typed.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import delete, insert, select, update

from core.errors import DigitLabError
from core.store import database
from core.store.schema import signin_attempts

#: Wrong codes allowed within WINDOW_S seconds before attempts are refused.
FREE = 5
WINDOW_S = 60.0
FIRST_BLOCK_S = 30.0
MAX_BLOCK_S = 3600.0
#: What the sign-in form says.
FORM_NOTE = (
    f"After {FREE} wrong codes within a minute, from this browser or for one name, sign-in is refused "
    "for a while (longer each time), even with the right code; wrong codes are logged."
)
log = logging.getLogger(__name__)


def keys(client: str | None, name: str) -> list[str]:
    """The counters an attempt counts on: its client's (when known) and its typed name's."""
    found = [f"name:{' '.join(name.split()).casefold()[:80]}"]
    if client:
        found.insert(0, f"client:{client[:80]}")
    return found


def refused_for(client: str | None, name: str, now: float | None = None) -> float:
    """Seconds an attempt from ``client`` for ``name`` must still wait (0: it may try)."""
    now = time.time() if now is None else now
    wanted = keys(client, name)
    try:
        with database().read() as conn:
            until = (
                conn.execute(select(signin_attempts.c.blocked_until).where(signin_attempts.c.key.in_(wanted)))
                .scalars()
                .all()
            )
    except DigitLabError:
        return 0.0
    return max([u - now for u in until] + [0.0])


def check(client: str | None, name: str, now: float | None = None) -> None:
    """Refuse (DigitLabError) an attempt from a client or for a name that is blocked now."""
    wait = refused_for(client, name, now)
    if wait > 0:
        log.warning(
            "sign-in refused without checking the code: %r from %s is blocked for %.0f s more",
            name[:40],
            client or "an unknown client",
            wait,
        )
        raise DigitLabError(f"too many wrong codes: try again in {_duration(wait)}")


def failed(client: str | None, name: str, what: str, now: float | None = None) -> None:
    """Count a wrong ``what`` ("class code", "teacher code") from ``client`` for ``name``, and log it."""
    now = time.time() if now is None else now
    log.warning("wrong %s for %r from %s", what, name[:40], client or "an unknown client")
    with database().write(lock="signin_attempts") as conn:
        for key in keys(client, name):
            row = conn.execute(select(signin_attempts).where(signin_attempts.c.key == key)).first()
            if row is None:
                conn.execute(
                    insert(signin_attempts).values(key=key, failures=1, window_start=now, blocked_until=0.0, strikes=0)
                )
                continue
            failures, start, strikes, until = row.failures, row.window_start, row.strikes, row.blocked_until
            if now - start > WINDOW_S and until <= now:
                failures, start = 0, now
            failures += 1
            if failures > FREE:
                strikes += 1
                until = now + min(FIRST_BLOCK_S * 2 ** (strikes - 1), MAX_BLOCK_S)
                failures, start = 0, now
                log.warning("sign-in blocked for %.0f s: %s", until - now, key)
            conn.execute(
                update(signin_attempts)
                .where(signin_attempts.c.key == key)
                .values(failures=failures, window_start=start, blocked_until=until, strikes=strikes)
            )


def succeeded(name: str) -> None:
    """A right code: the name's count starts afresh (the client's stays: one client may guess names)."""
    try:
        with database().write(lock="signin_attempts") as conn:
            conn.execute(
                delete(signin_attempts).where(
                    signin_attempts.c.key == keys(None, name)[0], signin_attempts.c.blocked_until <= time.time()
                )
            )
    except DigitLabError:
        pass


def _duration(seconds: float) -> str:
    seconds = max(1, int(seconds + 0.999))
    return f"{seconds} s" if seconds < 120 else f"{(seconds + 59) // 60} minutes"
