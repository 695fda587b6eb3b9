"""Merging a duplicate ticket into the original, and ticket followers.

Revision ID: 0018
Revises: 0010
Create Date: 2026-12-02

`tickets.merged_into_id`: set on a duplicate once merged (services/merge.py); indexed where set, for the
original's "merged from" list. `ticket_followers`: people on the requester's side of a ticket besides its
requester (a merged duplicate's requester): they see it as the requester does and get the requester's mails.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tickets",
        sa.Column("merged_into_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_check_constraint("ck_tickets_not_merged_into_self", "tickets", "merged_into_id <> id")
    op.create_index(
        "ix_tickets_merged_into",
        "tickets",
        ["merged_into_id"],
        postgresql_where=sa.text("merged_into_id IS NOT NULL"),
    )
    op.create_table(
        "ticket_followers",
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("added_by_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    # visibility.visible_tickets reads a person's followed tickets by user.
    op.create_index("ix_ticket_followers_user", "ticket_followers", ["user_id", "ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_followers_user", table_name="ticket_followers")
    op.drop_table("ticket_followers")
    op.drop_index("ix_tickets_merged_into", table_name="tickets")
    op.drop_constraint("ck_tickets_not_merged_into_self", "tickets", type_="check")
    op.drop_column("tickets", "merged_into_id")
