"""The store's tables (SQLAlchemy Core). Alembic's revisions under core/store/migrations bring an
older database to this shape; a new one is created from it directly."""
from __future__ import annotations

from sqlalchemy import (Boolean, Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text,
                        false)

metadata = MetaData()

#: Every piece of background work, training runs included: who asked, its state, who dispatches it
#: (a lease that a living dispatcher renews), what it reported, and, for tasks, what it needs and
#: what it returned. Runs and tasks draw on separate slots (``pool``), under one fair-share rule.
jobs = Table(
    "jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("pool", String(16), nullable=False),
    Column("owner", Text),
    Column("state", String(16), nullable=False),
    Column("created", Float, nullable=False),
    Column("started", Float),
    Column("finished", Float),
    Column("error", Text),
    Column("progress", Text),
    Column("stop_requested", Boolean, nullable=False, server_default=false()),
    Column("dispatcher", Text),
    Column("lease_until", Float),
    Column("cap", Integer),
    Column("resources", Text),
    Column("payload", LargeBinary),
    Column("result", LargeBinary),
)
Index("jobs_pool_state", jobs.c.pool, jobs.c.state, jobs.c.created)

#: What a training run is (its job row says where it is): config, labels for tables, final metrics.
runs = Table(
    "runs", metadata,
    Column("id", String(32), primary_key=True),
    Column("config", Text, nullable=False),
    Column("dataset", Text, nullable=False),
    Column("pipeline_label", Text, nullable=False),
    Column("preset", Text, nullable=False),
    Column("metrics", Text),
    Column("grid", Text),
    Column("published", Boolean, nullable=False, server_default=false()),
)
Index("runs_grid", runs.c.grid)

#: One row per epoch a run reported.
epochs = Table(
    "epochs", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("loss", Float),
    Column("accuracy", Float),
    Column("val_loss", Float),
    Column("val_accuracy", Float),
    Column("seconds", Float),
)

#: The lab's secrets (the sign-in key, ...): made once, shared by every replica.
secrets = Table(
    "secrets", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)
