"""Trust in the triage: `tickets.needs_review`, and staff corrections as labelled examples.

Revision ID: 0011
Revises: 0016
Create Date: 2026-12-02

Set when a triage's confidence is below TRIAGE_REVIEW_THRESHOLD (the ticket is still routed); cleared when staff
set the category or priority. A partial index serves the queue's "needs review" filter, which reads few rows.
`triage_corrections`: every staff change of a triaged ticket's category, priority or assignee; the offline triage
reads them in id order (the primary key is the only index it needs).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "triage_corrections",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("field", sa.String(20), nullable=False),
        sa.Column("ai_value", sa.Text),
        sa.Column("staff_value", sa.Text, nullable=False),
        sa.Column("skills", postgresql.ARRAY(sa.Text), server_default="{}", nullable=False),
        sa.Column("created_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("field IN ('category', 'priority', 'assignee')", name="ck_triage_corrections_field"),
    )
    op.add_column("tickets", sa.Column("needs_review", sa.Boolean, server_default=sa.false(), nullable=False))
    op.create_index(
        "ix_tickets_needs_review", "tickets", ["priority_rank", "id"], postgresql_where=sa.text("needs_review")
    )


def downgrade() -> None:
    op.drop_table("triage_corrections")
    op.drop_index("ix_tickets_needs_review", table_name="tickets")
    op.drop_column("tickets", "needs_review")
