"""Where the store lives and how to talk to it: one engine per database, short transactions.

``database()`` is the lab's database: ``DIGITLAB_DATABASE_URL`` when set (``postgresql://...``,
served by psycopg 3), else SQLite in ``<run root>/index.sqlite3`` (the file earlier versions kept
the run index in, so an upgraded lab keeps it). The schema is brought up to date once per process
and database, under a lock, so replicas starting together upgrade it once (core/store/migrations).

Writes go through :meth:`Database.write`: on SQLite a transaction that takes the write lock up
front (``BEGIN IMMEDIATE``: no upgrade deadlocks between processes); on PostgreSQL a transaction
that may take an advisory lock by name, which is how dispatchers on many replicas claim jobs one
at a time.

Files of earlier versions (workspaces, the sign-in secret file, ``challenges.sqlite``, upload
records, label marks and corrections, class names: :func:`legacy_files`) are imported by Alembic
revision 0002. A brand-new database is normally created from the current schema at once and never
runs revisions; so where such files exist, a new database takes the Alembic path from nothing
instead, and the one importer (in the revision) runs either way.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from core.errors import DigitLabError
from core.settings import settings
from core.store.schema import metadata

#: The newest schema revision (core/store/migrations/versions); a test checks Alembic agrees.
HEAD = "0006"
SQLITE_NAME = "index.sqlite3"
_ENV = "DIGITLAB_DATABASE_URL"

_databases: dict[str, Database] = {}
_lock = threading.Lock()


def database_url(root: str | os.PathLike[str] | None = None) -> str:
    """The lab's database: ``DIGITLAB_DATABASE_URL``, else SQLite under ``root`` (default: the run root)."""
    configured = os.environ.get(_ENV, "").strip()
    if configured:
        for plain in ("postgresql://", "postgres://"):
            if configured.startswith(plain):  # psycopg 3, not SQLAlchemy's default psycopg2
                return "postgresql+psycopg://" + configured[len(plain) :]
        return configured
    folder = Path(root if root is not None else settings().run_root)
    return f"sqlite:///{folder.resolve() / SQLITE_NAME}"


def database(root: str | os.PathLike[str] | None = None) -> Database:
    """The process's handle on the lab's database (see :func:`database_url`), schema up to date."""
    url = database_url(root)
    with _lock:
        db = _databases.get(url)
        if db is None or (db.sqlite and not Path(db.where).exists()):  # a new file needs its schema
            db = _databases[url] = Database(url)
    return db


def dispose_all() -> None:
    """Close every pooled connection (tests that drop a database; a process about to fork)."""
    with _lock:
        for db in list(_databases.values()):
            db.engine.dispose()
        _databases.clear()


class Database:
    """One database: its engine, transactions, and a schema brought up to date on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.where = url.removeprefix("sqlite:///") if self.sqlite else _safe_url(url)
        if self.sqlite:
            try:
                Path(self.where).parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise DigitLabError(f"cannot create the database's folder: {err.strerror}", self.where) from None
        try:
            self.engine = _engine(url)
        except (sa_exc.ArgumentError, ImportError) as err:
            raise DigitLabError(f"{_ENV} is not a database URL this lab can use: {err}") from None
        self._prepare()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (one consistent view)."""
        with self._errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, lock: str | None = None) -> Iterator[Connection]:
        """A write transaction, committed at the end (rolled back on an error). ``lock`` names an
        advisory lock held until the end on PostgreSQL (SQLite's write lock already serialises)."""
        with self._errors(), self.engine.connect() as conn:
            conn = conn.execution_options(digitlab_write=True)
            with conn.begin():
                if lock is not None and not self.sqlite:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(lock)})
                yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """A database that cannot be opened or read is the user's problem to see, named."""
        try:
            yield
        except sa_exc.IntegrityError:
            raise
        except sa_exc.DBAPIError as err:
            raise DigitLabError(f"the lab's database failed: {err.orig}", self.where) from None

    def _prepare(self) -> None:
        """Create the schema in a new database, or upgrade an older one (once, under a lock)."""
        with self.write(lock="schema") as conn:
            tables = set(inspect(conn).get_table_names())
            if "alembic_version" in tables:
                version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if version == HEAD:
                    return
            elif not tables & set(metadata.tables) and not legacy_files(*file_roots(self.url)):
                # A new database with nothing of earlier versions to import: the current schema at once.
                metadata.create_all(conn)
                conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
                conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD})
                return
            from core.store.migrate import upgrade  # Alembic only where there is something to upgrade

            upgrade(conn)


def file_roots(url: str) -> tuple[Path, Path]:
    """(run root, cache folder) whose files of earlier versions belong to the database ``url``: a
    SQLite database's own folder is its run root; a server's is the configured one."""
    config = settings()
    if url.startswith("sqlite"):
        return Path(url.removeprefix("sqlite:///")).parent, Path(config.cache_dir)
    return Path(config.run_root), Path(config.cache_dir)


#: What earlier versions kept in files, relative to (run root, cache folder): revision 0002 imports it.
LEGACY_RUN_ROOT = ("challenges/challenges.sqlite", "names.json")
LEGACY_CACHE = ("workspaces", "signin-secret", "upload_info", "label_marks", "label_corrections", "versions")


def legacy_files(run_root: Path, cache_dir: Path) -> bool:
    """Whether files of earlier versions lie under ``run_root`` or ``cache_dir`` (to import)."""
    try:
        return (
            any((run_root / name).exists() for name in LEGACY_RUN_ROOT)
            or any((cache_dir / name).exists() for name in LEGACY_CACHE[:-1])
            or any((cache_dir / LEGACY_CACHE[-1]).glob("*.json"))
        )
    except OSError:  # an unreadable folder holds nothing to import
        return False


def _engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        # UTF-8 on the wire whatever the server's encoding (a SQL_ASCII database, from an initdb without
        # a locale, would otherwise hand text back as bytes).
        return create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args={"client_encoding": "utf8"}
        )
    # No pool: a connection per transaction, as cheap as SQLite's open, and never one left open on
    # a file that was replaced meanwhile.
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30.0, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's begin event says how each transaction starts
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("digitlab_write") else "BEGIN")

    return engine


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks."""
    return int.from_bytes(hashlib.sha256(f"digitlab:{name}".encode()).digest()[:8], "big", signed=True)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "the configured database"
