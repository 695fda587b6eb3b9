"""Canned replies that staff share.

Revision ID: 0013
Revises: 0006
Create Date: 2026-12-02

`canned_replies`: title (unique ignoring case, so two replies cannot be told apart only by it), body with
`{{placeholders}}`, an optional status to set when sent, and who wrote it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(20)),
        sa.Column("created_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ux_canned_replies_title", "canned_replies", [sa.text("lower(title)")], unique=True)


def downgrade() -> None:
    op.drop_index("ux_canned_replies_title", table_name="canned_replies")
    op.drop_table("canned_replies")
