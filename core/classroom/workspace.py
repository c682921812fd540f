"""What each person was working on, kept server-side so it outlives a tab, a reload and a restart.

One small JSON file per identity key under ``<cache dir>/workspaces/`` (named by a hash of the
key, so a key never becomes a path): the values a session holds (dataset spec, pipeline, form
values, followed run) as plain JSON, plus which server process wrote it last, so a session that
brings it back can tell the person the lab restarted meanwhile. Nothing here knows Streamlit.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import Settings, settings

FOLDER = "workspaces"
#: This server process: a workspace written by another one was written before a restart.
PROCESS = uuid.uuid4().hex
#: A workspace larger than this is not written (form values are small; this bounds a bad caller).
MAX_BYTES = 256_000


@dataclass(frozen=True)
class Workspace:
    """A person's saved values and whether this server process wrote them."""

    values: dict[str, Any] = field(default_factory=dict)
    this_process: bool = True


def _path(key: str, config: Settings | None) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return Path((config or settings()).cache_dir) / FOLDER / f"{digest}.json"


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
    try:
        body = json.loads(_path(key, config).read_text())
        values = body["values"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(values, dict) or body.get("key") != key:
        return None
    return Workspace(values, body.get("process") == PROCESS)


def save(key: str, values: dict[str, Any], config: Settings | None = None) -> bool:
    """Keep ``values`` (see :func:`encode`) as ``key``'s workspace, replacing the file atomically
    so a reader never sees half of it; False when it was too large to keep."""
    text = json.dumps({"key": key, "process": PROCESS, "values": json.loads(encode(values))})
    if len(text) > MAX_BYTES:
        return False
    path = _path(key, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ws-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
