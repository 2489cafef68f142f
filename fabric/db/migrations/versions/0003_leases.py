"""leases, and jobs.retry_at

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:12:40.118305
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fabric.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("holder", sa.String(length=32), nullable=False),
        sa.Column("holder_name", sa.String(length=255), nullable=False),
        sa.Column("expires_at", fabric.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("retry_at", fabric.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("retry_at")

    op.drop_table("leases")
