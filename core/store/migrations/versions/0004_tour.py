"""Ended sign-ins (a "Sign out" refuses every copy of that sign-in's cookie; a teacher signs a
student out) and runs queued again (once: a second "Queue again" finds the first one's run).

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

# The tables as this revision made them (a later schema change is a later revision's business).
_meta = sa.MetaData()
signin_revocations = sa.Table(
    "signin_revocations",
    _meta,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("not_before", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)
requeues = sa.Table(
    "requeues",
    _meta,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("new_run", sa.String(32), nullable=False),
    sa.Column("by", sa.Text),
    sa.Column("at", sa.Float, nullable=False),
)


def upgrade() -> None:
    _meta.create_all(op.get_bind())


def downgrade() -> None:
    for table in reversed(_meta.sorted_tables):
        table.drop(op.get_bind())
