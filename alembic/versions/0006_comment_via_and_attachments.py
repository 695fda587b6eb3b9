"""How each comment arrived, and files on tickets.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

- `ticket_comments.via`: 'web', 'email' or 'api' (existing comments: 'web').
- `attachments`: the bytes in PostgreSQL (bytea, TOAST-compressed where it helps), so every web process on
  every host serves them; one index per ticket and per comment for listing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ticket_comments", sa.Column("via", sa.String(10), server_default="web", nullable=False))
    op.create_check_constraint("ck_ticket_comments_via", "ticket_comments", "via IN ('web', 'email', 'api')")
    op.create_table(
        "attachments",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("comment_id", sa.Integer, sa.ForeignKey("ticket_comments.id", ondelete="CASCADE")),
        sa.Column("uploaded_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_attachments_ticket_id", "attachments", ["ticket_id"])
    op.create_index("ix_attachments_comment_id", "attachments", ["comment_id"])


def downgrade() -> None:
    op.drop_index("ix_attachments_comment_id", table_name="attachments")
    op.drop_index("ix_attachments_ticket_id", table_name="attachments")
    op.drop_table("attachments")
    op.drop_constraint("ck_ticket_comments_via", "ticket_comments")
    op.drop_column("ticket_comments", "via")
