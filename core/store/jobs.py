"""The one durable job table: every training run, grid run and background task, whoever runs it.

Each dashboard replica and each CLI runs a dispatcher. A dispatcher claims the next queued job of
a pool (``runs`` or ``tasks``, each with its own slots) in one write transaction that counts what
runs, applies fair share and the per-owner cap (:func:`fair_order`, the only place they are
computed), and marks the job running under its name, with a lease. It renews the leases of what
it holds while it lives; when it is gone, another dispatcher takes the job over
(:func:`orphans`, :func:`take_over`), so nothing stays claimed forever:

- on the same machine a dispatcher is gone as soon as its process is (``/proc``, exact);
- on another machine (a replica in its own container) when its lease has run out.

Nothing here knows Ray: core.runs.store and core.execution build on these rows.
"""

from __future__ import annotations

import json
import os
import secrets as token
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from core.states import ACTIVE, QUEUED, RUNNING
from core.store.db import Database
from core.store.schema import jobs

RUNS, TASKS = "runs", "tasks"
#: Seconds a dispatcher's claim lasts without renewal; it renews every third of it.
LEASE_S = float(os.environ.get("DIGITLAB_LEASE_S", "") or 20.0)
HOST = socket.gethostname()
_TOKEN = token.token_hex(4)

Cap = int | None | Mapping[str | None, int | None]


def dispatcher_name(pid: int | None = None) -> str:
    """This process's name as a dispatcher (``host/pid/start/token``); ``pid`` names another
    process of this machine (its start time tells it from a later one with the same pid)."""
    pid = os.getpid() if pid is None else pid
    return f"{HOST}/{pid}/{process_start(pid) or ''}/{_TOKEN if pid == os.getpid() else 'x'}"


def dispatcher_pid(name: str | None) -> int | None:
    """The process id in a dispatcher's name, or None."""
    try:
        return int(str(name).split("/")[1])
    except (IndexError, ValueError):
        return None


def dispatcher_label(name: str) -> str:
    """A dispatcher's name in words: ``process <pid> on <host>``."""
    host, pid = (str(name).split("/") + ["", ""])[:2]
    return f"process {pid} on {host}"


def dispatcher_alive(name: str, lease_until: float | None, now: float | None = None) -> bool:
    """Whether dispatcher ``name`` still holds its jobs (see the module docstring)."""
    host, pid, start = (name.split("/") + ["", "", ""])[:3]
    if host == HOST and pid.isdigit():
        return process_alive(int(pid), start or None)
    return lease_until is not None and lease_until > (time.time() if now is None else now)


def fair_order(
    queued: list[tuple[str, str | None]],
    running: Mapping[str | None, int],
    max_running_per_owner: Cap = None,
    last_started: Mapping[str | None, float] | None = None,
) -> list[str]:
    """The order in which ``queued`` (job id, owner) pairs, oldest first, will start: round-robin
    across owners, the owner with the fewest jobs in progress first; ties go to the owner served
    longest ago (``last_started``: when their latest job started), then to the longest waiting.

    So one person's 18-run grid cannot hold another's single run behind it. ``None`` counts as one
    owner. ``max_running_per_owner`` (one number for everyone, or one per owner) leaves an owner
    out of the order once that many of theirs would be in progress.
    """
    heads: dict[str | None, list[str]] = {}
    for job_id, owner in queued:
        heads.setdefault(owner, []).append(job_id)
    arrival = {owner: i for i, owner in enumerate(heads)}  # whose oldest job waits longest
    counts = {owner: running.get(owner, 0) for owner in heads}
    served = {owner: (last_started or {}).get(owner, float("-inf")) for owner in heads}
    tick = max([t for t in served.values() if t != float("-inf")], default=0.0)
    caps = (
        max_running_per_owner
        if isinstance(max_running_per_owner, Mapping)
        else dict.fromkeys(heads, max_running_per_owner)
    )
    order: list[str] = []
    while heads:
        for owner in [o for o in heads if (cap := caps.get(o)) is not None and counts[o] >= cap]:
            del heads[owner]
        if not heads:
            break
        owner = min(heads, key=lambda o: (counts[o], served[o], arrival[o]))
        order.append(heads[owner].pop(0))
        counts[owner] += 1
        tick += 1.0  # picked now: served most recently
        served[owner] = tick
        if not heads[owner]:
            del heads[owner]
    return order


def running_counts(conn: Connection, pool: str) -> dict[str | None, int]:
    """Jobs in progress per owner."""
    rows = conn.execute(
        select(jobs.c.owner, func.count()).where(jobs.c.pool == pool, jobs.c.state == RUNNING).group_by(jobs.c.owner)
    )
    return {owner: n for owner, n in rows}


def last_started(conn: Connection, pool: str) -> dict[str | None, float]:
    """When each owner's latest job started."""
    rows = conn.execute(
        select(jobs.c.owner, func.max(jobs.c.started))
        .where(jobs.c.pool == pool, jobs.c.started.is_not(None))
        .group_by(jobs.c.owner)
    )
    return {owner: t for owner, t in rows}


def busy_intervals(conn: Connection, since: float, now: float) -> list[tuple[float, float]]:
    """(started, ended or ``now``) of every job of either pool that ran after ``since``: what the
    estimates read the load of past jobs from (core.runs.eta.mean_load)."""
    rows = conn.execute(
        select(jobs.c.started, jobs.c.finished).where(
            jobs.c.started.is_not(None), or_(jobs.c.finished.is_(None), jobs.c.finished >= since)
        )
    ).all()
    return [(r.started, r.finished if r.finished is not None else now) for r in rows]


def active_counts(conn: Connection) -> dict[str, int]:
    """Running and queued jobs, by pool."""
    rows = conn.execute(select(jobs.c.pool, func.count()).where(jobs.c.state.in_(ACTIVE)).group_by(jobs.c.pool))
    return {pool: count for pool, count in rows}


def queued_rows(conn: Connection, pool: str) -> list[Any]:
    """The pool's queued jobs (id, owner, cap), oldest first."""
    return list(
        conn.execute(
            select(jobs.c.id, jobs.c.owner, jobs.c.cap)
            .where(jobs.c.pool == pool, jobs.c.state == QUEUED)
            .order_by(jobs.c.created, jobs.c.id)
        )
    )


def start_order(conn: Connection, pool: str, cap: int | None = None, capped: bool = True) -> list[str]:
    """The pool's queued job ids in the order they will start (``capped``: leaving out owners at
    their cap; a job's own cap, given when it was submitted, wins over ``cap``)."""
    queued = queued_rows(conn, pool)
    caps: dict[str | None, int | None] = {}
    for row in queued:
        caps.setdefault(row.owner, row.cap if row.cap is not None else cap)
    return fair_order(
        [(r.id, r.owner) for r in queued],
        running_counts(conn, pool),
        caps if capped else None,
        last_started(conn, pool),
    )


def has_queued(db: Database, pool: str) -> bool:
    """Whether any job of ``pool`` waits (one cheap read)."""
    with db.read() as conn:
        return (
            conn.execute(select(jobs.c.id).where(jobs.c.pool == pool, jobs.c.state == QUEUED).limit(1)).first()
            is not None
        )


def claim_next(
    db: Database, pool: str, slots: int, cap: int | None = None, dispatcher: str | None = None
) -> str | None:
    """Atomically move the next queued job of ``pool`` (fair share) to running, claimed by
    ``dispatcher`` (default: this process) with a lease, if fewer than ``slots`` run and its owner
    is under the cap. The count and the update share one locked transaction, so dispatchers on
    every replica together never exceed ``slots`` and never claim one job twice."""
    if not has_queued(db, pool):  # most rounds find nothing queued: skip the write lock then
        return None
    with db.write(lock=f"claim:{pool}") as conn:
        if sum(running_counts(conn, pool).values()) >= slots:
            return None
        order = start_order(conn, pool, cap)
        if not order:
            return None
        now = time.time()
        claimed = conn.execute(
            update(jobs)
            .where(jobs.c.id == order[0], jobs.c.state == QUEUED)
            .values(
                state=RUNNING,
                started=now,
                dispatcher=dispatcher or dispatcher_name(),
                lease_until=now + LEASE_S,
                progress=json.dumps({"phase": "starting"}),
            )
        )
        return order[0] if claimed.rowcount else None


def renew(db: Database, job_ids: Iterable[str], dispatcher: str | None = None) -> set[str]:
    """Extend the leases of ``job_ids`` that ``dispatcher`` (default: this process) still holds;
    return those (a job another dispatcher took over, or that ended, is no longer held)."""
    ids = list(job_ids)
    if not ids:
        return set()
    me = dispatcher or dispatcher_name()
    with db.write() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(ids), jobs.c.dispatcher == me, jobs.c.state == RUNNING)
            .values(lease_until=time.time() + LEASE_S)
        )
        return {
            r.id
            for r in conn.execute(
                select(jobs.c.id).where(jobs.c.id.in_(ids), jobs.c.dispatcher == me, jobs.c.state == RUNNING)
            )
        }


def orphans(db: Database, pool: str) -> list[tuple[str, str]]:
    """Running jobs of ``pool`` whose dispatcher is gone: (job id, that dispatcher's name)."""
    with db.read() as conn:
        rows = conn.execute(
            select(jobs.c.id, jobs.c.dispatcher, jobs.c.lease_until).where(
                jobs.c.pool == pool, jobs.c.state == RUNNING, jobs.c.dispatcher.is_not(None)
            )
        )
        found = list(rows)
    now = time.time()
    return [(r.id, r.dispatcher) for r in found if not dispatcher_alive(r.dispatcher, r.lease_until, now)]


def take_over(db: Database, job_id: str, old: str, dispatcher: str | None = None) -> bool:
    """Make ``dispatcher`` (default: this process) the holder of an orphaned job, unless another
    dispatcher took it first."""
    with db.write() as conn:
        done = conn.execute(
            update(jobs)
            .where(and_(jobs.c.id == job_id, jobs.c.state == RUNNING, jobs.c.dispatcher == old))
            .values(dispatcher=dispatcher or dispatcher_name(), lease_until=time.time() + LEASE_S)
        )
    return done.rowcount > 0


def close(conn: Connection, job_id: str, state: str, states: Iterable[str] = ACTIVE, **values: Any) -> bool:
    """Move ``job_id`` from one of ``states`` to ``state`` (finished, stopped, failed) with
    ``values``; False when it was not in one of them (a stop or another dispatcher came first)."""
    done = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.state.in_(list(states)))
        .values(state=state, finished=time.time(), progress=json.dumps({"phase": state}), **values)
    )
    return done.rowcount > 0


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, from /proc), or None if it is
    gone or a zombie. Together with the pid it names one process, even once pids are reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def process_alive(pid: int, start: str | None) -> bool:
    """Whether the process recorded as (``pid``, ``start``) still runs.

    Where /proc exists the start time must match, so a pid reused after a restart never counts
    and an exited, unreaped child (a zombie) counts as gone. Elsewhere: whether the pid exists.
    """
    if Path("/proc/self/stat").exists():
        return start is not None and process_start(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
