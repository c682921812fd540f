"""Who published a run and who stopped it, kept beside the run's row (``runs.published_by`` and
``runs.stopped_by``): the pages say "Amal's run, published by Ms Teacher" and "Stopped by the
teacher", not just the owner's name. Read and written through core.classroom.run_access."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from sqlalchemy import select, update

from core.runs.records import Run
from core.store.db import Database
from core.store.schema import runs


def record_publisher(db: Database, run_id: str, who: str | None) -> None:
    """``who`` published ``run_id`` (None: withdrawn)."""
    with db.write() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(published_by=who))


def record_stopper(db: Database, run_id: str, who: str) -> None:
    """``who`` asked ``run_id`` to stop (the first asker is kept)."""
    with db.write() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id, runs.c.stopped_by.is_(None)).values(stopped_by=who))


def with_credits(db: Database, found: Sequence[Run], name: Callable[[str | None], str]) -> list[Run]:
    """``found`` with ``published_by`` and ``stopped_by`` filled in (one read for all of them), and
    the owner's, publisher's and stopper's names as ``name`` reads a key."""
    if not found:
        return []
    ids = [r.id for r in found]
    with db.read() as conn:
        rows = (
            conn.execute(select(runs.c.id, runs.c.published_by, runs.c.stopped_by).where(runs.c.id.in_(ids))).all()
            if len(ids) <= 500
            else conn.execute(select(runs.c.id, runs.c.published_by, runs.c.stopped_by)).all()
        )
    by_id = {row.id: (row.published_by, row.stopped_by) for row in rows}
    out = []
    for run in found:
        published_by, stopped_by = by_id.get(run.id, (None, None))
        published_by = published_by if run.published else None
        out.append(
            replace(
                run,
                published_by=published_by,
                stopped_by=stopped_by,
                owner_name=name(run.owner),
                published_by_name=name(published_by) if published_by else None,
                stopped_by_name=name(stopped_by) if stopped_by else None,
            )
        )
    return out
