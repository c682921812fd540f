"""Alembic, run from inside the lab: bring a database written by an earlier version up to date.

Called by :class:`core.store.db.Database` with its open write transaction (which holds the schema
lock), so two replicas starting together upgrade once. The revisions live in ``migrations/``;
``HEAD`` in core.store.db names the newest.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(conn: Connection) -> None:
    """Run every revision the database has not had yet, on ``conn``'s transaction."""
    command.upgrade(_config(conn), "head")


def head() -> str | None:
    """The newest revision Alembic knows of."""
    return ScriptDirectory.from_config(_config()).get_current_head()
