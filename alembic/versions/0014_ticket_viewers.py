"""Who has a ticket open right now (collision detection).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

UNLOGGED: rewritten every second by each open ticket page and worthless after a crash, so it skips the WAL
(cheaper writes, not replicated, emptied on crash recovery).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_viewers",
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("typing_until", sa.DateTime(timezone=True)),
        prefixes=["UNLOGGED"],
    )
    op.create_index("ix_ticket_viewers_seen_at", "ticket_viewers", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_viewers_seen_at", table_name="ticket_viewers")
    op.drop_table("ticket_viewers")
