"""Everything else the dashboard kept in files moves into the store: workspaces, challenges and
submissions, the upload index, label marks and corrections, corrected versions' provenance, class
names; and the sign-in secret file becomes a row of ``secrets``.

The tables are created, then the files of earlier versions are imported (the data files themselves,
uploads, versions and hidden sets, stay where they are). They are found through core.settings: the
cache folder, and the run root (a SQLite database's own folder). A brand-new database that finds
such files is created through this revision too (core.store.db), so this is the one importer.
The old files are left in place, untouched: an older lab pointed at the same folders still works.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The tables as this revision made them (a later schema change is a later revision's business).
_meta = sa.MetaData()
workspaces = sa.Table(
    "workspaces",
    _meta,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("process", sa.String(32), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)
challenges = sa.Table(
    "challenges",
    _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("dataset", sa.Text, nullable=False),
    sa.Column("public_share", sa.Float, nullable=False),
    sa.Column("per_day", sa.Integer, nullable=False),
    sa.Column("deadline", sa.Float),
    sa.Column("show_private", sa.Boolean, nullable=False),
    sa.Column("closed", sa.Boolean, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("images", sa.Integer, nullable=False),
    sa.Column("public_images", sa.Integer, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("created_by", sa.Text),
)
submissions = sa.Table(
    "submissions",
    _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("challenge_id", sa.String(32), nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("preset", sa.Text),
    sa.Column("pipeline", sa.Text),
    sa.Column("validation", sa.Text),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("public_score", sa.Float),
    sa.Column("private_score", sa.Float),
    sa.Column("all_score", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("scored", sa.Float),
)
sa.Index("submissions_by_owner", submissions.c.challenge_id, submissions.c.owner, submissions.c.created)
uploads = sa.Table("uploads", _meta, sa.Column("hash", sa.String(64), primary_key=True), sa.Column("name", sa.Text))
upload_owners = sa.Table(
    "upload_owners",
    _meta,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("owner", sa.Text, primary_key=True),
)
label_marks = sa.Table(
    "label_marks",
    _meta,
    sa.Column("owner", sa.Text, primary_key=True),
    sa.Column("dataset", sa.Text, primary_key=True),
    sa.Column("image", sa.Integer, primary_key=True),
    sa.Column("mark", sa.String(16), nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)
label_corrections = sa.Table(
    "label_corrections",
    _meta,
    sa.Column("owner", sa.Text, primary_key=True),
    sa.Column("dataset", sa.Text, primary_key=True),
    sa.Column("image", sa.Integer, primary_key=True),
    sa.Column("given", sa.Integer, nullable=False),
    sa.Column("label", sa.Integer, nullable=False),
    sa.Column("by", sa.Text),
    sa.Column("search", sa.Text),
    sa.Column("accepted", sa.Float, nullable=False),
)
dataset_versions = sa.Table(
    "dataset_versions",
    _meta,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("provenance", sa.Text, nullable=False),
)
class_names = sa.Table(
    "class_names", _meta, sa.Column("key", sa.Text, primary_key=True), sa.Column("name", sa.Text, nullable=False)
)
secrets = sa.table("secrets", sa.column("name", sa.String), sa.column("value", sa.LargeBinary))

_MARKS = ("wrong", "fine")
SECRET_NAME = "signin"


def upgrade() -> None:
    from core.store.db import file_roots

    bind = op.get_bind()
    _meta.create_all(bind)
    run_root, cache = file_roots(bind.engine.url.render_as_string(hide_password=False))
    for table, rows in (
        (workspaces, _workspaces(cache)),
        (secrets, _secret(cache)),
        (challenges, _old_index(run_root, "challenges", _CHALLENGE_COLUMNS)),
        (submissions, _old_index(run_root, "submissions", _SUBMISSION_COLUMNS)),
        (uploads, _uploads(cache)),
        (upload_owners, _upload_owners(cache)),
        (label_marks, _marks(cache)),
        (label_corrections, _corrections(cache)),
        (dataset_versions, _versions(cache)),
        (class_names, _names(run_root)),
    ):
        batch = list(rows)
        if batch:
            bind.execute(sa.insert(table), batch)


def downgrade() -> None:
    for table in reversed(_meta.sorted_tables):
        table.drop(op.get_bind())


# ---- the files of earlier versions ------------------------------------------------------------


def _json_files(folder: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, object) of each readable JSON object file in ``folder`` (unreadable ones hold nothing)."""
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(value, dict):
            yield path, value


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _workspaces(cache: Path) -> Iterator[dict[str, Any]]:
    """``workspaces/<hash>.json``: {"key", "process", "values"}."""
    for path, body in _json_files(cache / "workspaces"):
        key, values = body.get("key"), body.get("values")
        if isinstance(key, str) and isinstance(values, dict):
            yield {
                "key": key,
                "process": str(body.get("process") or "")[:32],
                "body": json.dumps(values, sort_keys=True),
                "updated": _mtime(path),
            }


def _secret(cache: Path) -> Iterator[dict[str, Any]]:
    """``signin-secret``: hex; a damaged one is left behind (a new secret signs everyone out)."""
    try:
        yield {"name": SECRET_NAME, "value": bytes.fromhex((cache / "signin-secret").read_text().strip())}
    except (OSError, ValueError):
        return


_CHALLENGE_COLUMNS = tuple(c.name for c in challenges.columns)
_SUBMISSION_COLUMNS = tuple(c.name for c in submissions.columns)


def _old_index(run_root: Path, table: str, columns: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Rows of ``challenges/challenges.sqlite`` (the challenge index of earlier versions)."""
    path = run_root / "challenges" / "challenges.sqlite"
    if not path.is_file():
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - a fixed table name
    except sqlite3.DatabaseError:
        rows = []
    finally:
        db.close()
    for row in rows:
        value = {name: row[name] for name in columns if name in row.keys()}
        for flag in ("show_private", "closed"):
            if flag in value:
                value[flag] = bool(value[flag])
        yield value


def _uploads(cache: Path) -> Iterator[dict[str, Any]]:
    """``upload_info/<hash>.json``: {"name", "owners"}."""
    for path, info in _json_files(cache / "upload_info"):
        name = info.get("name")
        yield {"hash": path.stem, "name": name if isinstance(name, str) else None}


def _upload_owners(cache: Path) -> Iterator[dict[str, Any]]:
    for path, info in _json_files(cache / "upload_info"):
        owners = info.get("owners")
        for owner in sorted({o for o in owners if isinstance(o, str)}) if isinstance(owners, list) else ():
            yield {"hash": path.stem, "owner": owner}


def _marks(cache: Path) -> Iterator[dict[str, Any]]:
    """``label_marks/<hash>.json``: {"dataset", "owner", "updated", "marks": {index: mark}}."""
    for path, data in _json_files(cache / "label_marks"):
        spec, owner, marks = data.get("dataset"), data.get("owner"), data.get("marks")
        if not isinstance(spec, str) or not isinstance(marks, dict) or not (owner is None or isinstance(owner, str)):
            continue
        updated = data.get("updated") if isinstance(data.get("updated"), (int, float)) else _mtime(path)
        for index, mark in marks.items():
            if str(index).isdigit() and mark in _MARKS:
                yield {"owner": owner or "", "dataset": spec, "image": int(index), "mark": mark, "updated": updated}


def _named(spec: str, owner: str | None) -> str:
    """How earlier versions named a person's file for a dataset (a hash of owner and spec)."""
    named = spec if owner is None else json.dumps([owner, spec])
    return hashlib.sha256(named.encode()).hexdigest()[:16]


def _corrections(cache: Path) -> Iterator[dict[str, Any]]:
    """``label_corrections/<hash>.json``: {"dataset", "corrections": {index: {...}}}. The file
    does not say whose it is; its name does (a hash of owner and spec), tried against each
    correction's accepter."""
    for path, data in _json_files(cache / "label_corrections"):
        spec, items = data.get("dataset"), data.get("corrections")
        if not isinstance(spec, str) or not isinstance(items, dict):
            continue
        people = {by for c in items.values() if isinstance(c, dict) and isinstance(by := c.get("by"), str)}
        owner = next((o for o in (None, *sorted(people)) if _named(spec, o) == path.stem), None)
        for index, c in items.items():
            if not (str(index).isdigit() and isinstance(c, dict) and _label(c.get("label")) and _label(c.get("given"))):
                continue
            yield {
                "owner": owner or "",
                "dataset": spec,
                "image": int(index),
                "given": int(c["given"]),
                "label": int(c["label"]),
                "by": c.get("by") if isinstance(c.get("by"), str) else None,
                "search": c.get("search") if isinstance(c.get("search"), str) else None,
                "accepted": float(c["accepted"]) if isinstance(c.get("accepted"), (int, float)) else _mtime(path),
            }


def _label(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9


def _versions(cache: Path) -> Iterator[dict[str, Any]]:
    """``versions/<hash>.json``: a corrected version's provenance, beside its ``<hash>.npz``."""
    for path, data in _json_files(cache / "versions"):
        yield {"hash": path.stem, "provenance": json.dumps(data)}


def _names(run_root: Path) -> Iterator[dict[str, Any]]:
    """``names.json`` beside the run index: {class-code key: name as typed}."""
    try:
        data = json.loads((run_root / "names.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    for key, name in data.items() if isinstance(data, dict) else ():
        yield {"key": str(key), "name": str(name)}
