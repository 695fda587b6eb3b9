"""Tickets whose triage was not confident enough: `tickets.needs_review`.

Revision ID: 0011
Revises: 0006
Create Date: 2026-12-02

Set when a triage's confidence is below TRIAGE_REVIEW_THRESHOLD (the ticket is still routed); cleared when staff
set the category or priority. A partial index serves the queue's "needs review" filter, which reads few rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("needs_review", sa.Boolean, server_default=sa.false(), nullable=False))
    op.create_index(
        "ix_tickets_needs_review", "tickets", ["priority_rank", "id"], postgresql_where=sa.text("needs_review")
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_needs_review", table_name="tickets")
    op.drop_column("tickets", "needs_review")
