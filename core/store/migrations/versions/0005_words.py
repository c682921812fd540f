"""Runs say who published them and who stopped them (the teacher, or their owner).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("published_by", sa.Text))
    op.add_column("runs", sa.Column("stopped_by", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("stopped_by")
        batch.drop_column("published_by")
