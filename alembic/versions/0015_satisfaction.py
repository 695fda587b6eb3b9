"""Satisfaction ratings.

Revision ID: 0015
Revises: 0009
Create Date: 2026-12-02

`satisfaction_ratings`: one row per rated ticket (good or bad, an optional comment), with who worked it and
its category at the time, so the overview's figures per moderator and category stay true after a reassignment.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "satisfaction_ratings",
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("rating", sa.String(4), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("rated_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("assignee_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("category", sa.String(50)),
        sa.Column("rated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("rating IN ('good', 'bad')", name="ck_satisfaction_rating"),
    )
    op.create_index("ix_satisfaction_ratings_rated_at", "satisfaction_ratings", ["rated_at"])


def downgrade() -> None:
    op.drop_index("ix_satisfaction_ratings_rated_at", table_name="satisfaction_ratings")
    op.drop_table("satisfaction_ratings")
