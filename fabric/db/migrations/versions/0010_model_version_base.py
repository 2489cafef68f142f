"""model_versions.base_version_id: a lora adapter names the llm version it adapts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("base_version_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_model_versions_base_version_id_model_versions"),
            "model_versions",
            ["base_version_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_model_versions_base_version_id_model_versions"), type_="foreignkey"
        )
        batch_op.drop_column("base_version_id")
