"""Durable job queue and the e-mail outbox.

Revision ID: 0002_jobs_and_emails
Revises: 0001_core_domain
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_jobs_and_emails"
down_revision = "0001_core_domain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("dedupe_key", sa.String(200), unique=True),
        sa.Column("status", sa.String(10), nullable=False, server_default="queued"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default="6"),
        sa.Column("run_after", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("locked_by", sa.String(100)),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'dead')", name="ck_jobs_status"),
    )
    # Workers only ever look at due queued jobs and at running jobs whose lease ran out.
    op.create_index("ix_jobs_due", "jobs", ["run_after", "id"], postgresql_where=sa.text("status = 'queued'"))
    op.create_index("ix_jobs_running_lease", "jobs", ["locked_until"], postgresql_where=sa.text("status = 'running'"))
    op.create_index("ix_jobs_status_kind", "jobs", ["status", "kind"])

    op.create_table(
        "emails",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("to_address", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False, server_default="pending"),
        sa.Column("transport", sa.String(20)),
        sa.Column("message_id", sa.String(300)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="SET NULL")),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('pending', 'sent', 'recorded', 'failed')", name="ck_emails_status"),
    )
    op.create_index("ix_emails_created", "emails", [sa.text("created_at DESC")])
    op.create_index("ix_emails_ticket", "emails", ["ticket_id"])


def downgrade() -> None:
    op.drop_table("emails")
    op.drop_table("jobs")
