"""custom_templates: templates a project registers, versioned, published to others

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 08:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fabric.db.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "custom_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("group", sa.String(length=63), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("command", sa.String(length=10000), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("worker_resources", sa.JSON(), nullable=False),
        sa.Column("runtime_env", sa.JSON(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_custom_templates_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_custom_templates_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_templates")),
        sa.UniqueConstraint(
            "project_id",
            "name",
            "version",
            name=op.f("uq_custom_templates_project_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("custom_templates")
