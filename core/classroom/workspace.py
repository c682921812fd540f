"""What each person was working on, kept server-side so it outlives a tab, a reload and a restart.

One row per identity key in the lab's store (core.store, table ``workspaces``), so every dashboard
replica sees the same: the values a session holds (dataset spec, pipeline, form values, followed
run) as plain JSON, plus which replica process wrote it last, so a session that brings it back can
tell the person the lab restarted (or another replica took over) meanwhile. Nothing here knows
Streamlit.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update

from core.settings import Settings, settings
from core.store import database
from core.store.schema import workspaces

#: This replica process: a workspace written by another one was written before a restart (or by
#: another replica).
PROCESS = uuid.uuid4().hex
#: A workspace larger than this is not written (form values are small; this bounds a bad caller).
MAX_BYTES = 256_000


@dataclass(frozen=True)
class Workspace:
    """A person's saved values and whether this replica process wrote them."""

    values: dict[str, Any] = field(default_factory=dict)
    this_process: bool = True


def encode(values: dict[str, Any]) -> str:
    """``values`` as the JSON a workspace keeps: entries that are not plain JSON are left out."""
    kept = {}
    for name, value in values.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue
        kept[str(name)] = value
    return json.dumps(kept, sort_keys=True, allow_nan=False)


def load(key: str, config: Settings | None = None) -> Workspace | None:
    """The workspace of identity ``key``, or None if it has none (or an unreadable one)."""
    db = database((config or settings()).run_root)
    with db.read() as conn:
        row = conn.execute(select(workspaces.c.process, workspaces.c.body).where(workspaces.c.key == key)).first()
    if row is None:
        return None
    try:
        values = json.loads(row.body)
    except ValueError:
        return None
    return Workspace(values, row.process == PROCESS) if isinstance(values, dict) else None


def save(key: str, values: dict[str, Any], config: Settings | None = None) -> bool:
    """Keep ``values`` (see :func:`encode`) as ``key``'s workspace, replacing the last one in one
    transaction; False when it was too large to keep."""
    body = encode(values)
    if len(body) + len(key) > MAX_BYTES:
        return False
    row = {"process": PROCESS, "body": body, "updated": time.time()}
    # The advisory lock (PostgreSQL) makes two replicas saving one key at once take turns.
    with database((config or settings()).run_root).write(lock=f"workspace:{key}") as conn:
        if not conn.execute(update(workspaces).where(workspaces.c.key == key).values(**row)).rowcount:
            conn.execute(insert(workspaces).values(key=key, **row))
    return True
