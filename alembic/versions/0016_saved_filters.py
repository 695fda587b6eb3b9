"""Saved filters.

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-02

`saved_filters`: a person's named filters for the queue and ticket lists; names unique per person, ignoring case.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_filters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("filters", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ux_saved_filters_user_name", "saved_filters", ["user_id", sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index("ux_saved_filters_user_name", table_name="saved_filters")
    op.drop_table("saved_filters")
