"""Inbound mail, stored raw before it is parsed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

- `inbound_emails`: the raw bytes of every mail that came in (SMTP listener or IMAP polling), unique by
  Message-ID (a synthetic sha256-based one when the mail has none), with its envelope, where processing got
  (received -> processed | ignored | refused | failed), why, and the ticket / comment it became.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_emails",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("envelope_from", sa.String(998)),
        sa.Column("envelope_to", postgresql.ARRAY(sa.Text), server_default="{}", nullable=False),
        sa.Column("status", sa.String(10), server_default="received", nullable=False),
        sa.Column("outcome", sa.Text),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="SET NULL")),
        sa.Column("comment_id", sa.Integer, sa.ForeignKey("ticket_comments.id", ondelete="SET NULL")),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("source IN ('smtp', 'imap')", name="ck_inbound_emails_source"),
        sa.CheckConstraint(
            "status IN ('received', 'processed', 'ignored', 'refused', 'failed')", name="ck_inbound_emails_status"
        ),
    )
    op.create_index("uq_inbound_emails_message_id", "inbound_emails", ["message_id"], unique=True)
    op.create_index("ix_inbound_emails_ticket_id", "inbound_emails", ["ticket_id"])
    # Threading looks our sent mails up by Message-ID (In-Reply-To / References of a reply).
    op.create_index("ix_emails_message_id", "emails", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_emails_message_id", table_name="emails")
    op.drop_index("ix_inbound_emails_ticket_id", table_name="inbound_emails")
    op.drop_index("uq_inbound_emails_message_id", table_name="inbound_emails")
    op.drop_table("inbound_emails")
