"""The hostile student's holes (issue 33): corrected versions get owners, wrong sign-in codes are
counted per client and per name, and the teacher keeps a class list.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_meta = sa.MetaData()
sa.Table(
    "version_owners",
    _meta,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("owner", sa.Text, primary_key=True),
)
sa.Table(
    "signin_attempts",
    _meta,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("blocked_until", sa.Float, nullable=False),
    sa.Column("strikes", sa.Integer, nullable=False),
)
sa.Table("class_list", _meta, sa.Column("key", sa.Text, primary_key=True), sa.Column("name", sa.Text, nullable=False))


def upgrade() -> None:
    import json

    bind = op.get_bind()
    _meta.create_all(bind)
    # Versions made before: their maker (provenance "made_by") becomes their owner.
    rows = []
    for digest, body in bind.execute(sa.text("SELECT hash, provenance FROM dataset_versions")):
        try:
            maker = json.loads(body).get("made_by")
        except (ValueError, AttributeError):
            continue
        if isinstance(maker, str) and maker:
            rows.append({"hash": digest, "owner": maker})
    if rows:
        bind.execute(sa.insert(_meta.tables["version_owners"]), rows)


def downgrade() -> None:
    _meta.drop_all(op.get_bind())
