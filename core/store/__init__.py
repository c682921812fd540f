"""The one store for what the dashboard keeps: runs, every background job and its state,
workspaces, challenges and submissions, uploads, label marks and corrections (their index: the
files stay files, on the shared volume), and the lab's secrets.

SQLite under the run root by default (nothing to start); PostgreSQL when
``DIGITLAB_DATABASE_URL=postgresql://...`` is set, so any number of dashboard replicas (and the
CLI) share it. SQLAlchemy Core speaks to both; Alembic keeps the schema (core/store/migrations).
"""

from core.store.db import Database, database, database_url, dispose_all
from core.store.schema import metadata

__all__ = ["Database", "database", "database_url", "dispose_all", "metadata"]
