"""One job table: the run index of earlier versions becomes runs (what a run is) plus jobs (where
every piece of background work is, and who dispatches it); secrets get a table.

A run that was running under the old index keeps its dispatcher as ``host/pid/start/legacy``, so
the first dispatcher of the upgraded lab adopts it (core.store.jobs) when that process is gone.

Revision ID: 0001
Revises:
"""

import socket

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_OLD_RUN_COLUMNS = (
    "created",
    "started",
    "finished",
    "status",
    "error",
    "progress",
    "pid",
    "pid_start",
    "stop_requested",
    "owner",
)


def _create_jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("pool", sa.String(16), nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("started", sa.Float),
        sa.Column("finished", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("progress", sa.Text),
        sa.Column("stop_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("dispatcher", sa.Text),
        sa.Column("lease_until", sa.Float),
        sa.Column("cap", sa.Integer),
        sa.Column("resources", sa.Text),
        sa.Column("payload", sa.LargeBinary),
        sa.Column("result", sa.LargeBinary),
    )
    op.create_index("jobs_pool_state", "jobs", ["pool", "state", "created"])


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    tables = set(inspector.get_table_names())
    _create_jobs()
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    if "epochs" not in tables:
        op.create_table(
            "epochs",
            sa.Column("run_id", sa.String(32), primary_key=True),
            sa.Column("epoch", sa.Integer, primary_key=True),
            *(sa.Column(name, sa.Float) for name in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")),
        )
    if "runs" not in tables:
        op.create_table(
            "runs",
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("config", sa.Text, nullable=False),
            sa.Column("dataset", sa.Text, nullable=False),
            sa.Column("pipeline_label", sa.Text, nullable=False),
            sa.Column("preset", sa.Text, nullable=False),
            sa.Column("metrics", sa.Text),
            sa.Column("grid", sa.Text),
            sa.Column("published", sa.Boolean, nullable=False, server_default=sa.false()),
        )
        op.create_index("runs_grid", "runs", ["grid"])
        return
    # The run index of earlier versions: columns added over time may be missing from an old one.
    have = {c["name"] for c in inspector.get_columns("runs")}
    owner = "owner" if "owner" in have else "NULL"
    bind.execute(
        sa.text(
            "INSERT INTO jobs (id, kind, pool, owner, state, created, started, finished, error, progress, "
            "stop_requested, dispatcher) "
            f"SELECT id, 'training', 'runs', {owner}, status, created, started, finished, error, progress, "
            "stop_requested, CASE WHEN pid IS NULL THEN NULL "
            "ELSE :host || '/' || pid || '/' || COALESCE(pid_start, '') || '/legacy' END FROM runs"
        ),
        {"host": socket.gethostname()},
    )
    if "runs_status" in {i["name"] for i in inspector.get_indexes("runs")}:
        op.drop_index("runs_status", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        for name in _OLD_RUN_COLUMNS:
            if name in have:
                batch.drop_column(name)
        if "grid" not in have:
            batch.add_column(sa.Column("grid", sa.Text))
        if "published" not in have:
            batch.add_column(sa.Column("published", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index("runs_grid", "runs", ["grid"])
