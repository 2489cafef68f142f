"""allocations.metered_from: a job is billed from its start on the cluster, not its admission

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fabric.db.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("metered_from", UTCDateTime(timezone=True), nullable=True))
    # What was admitted before this change was metered from its admission, and still is.
    op.execute("UPDATE allocations SET metered_from = created_at")


def downgrade() -> None:
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_column("metered_from")
