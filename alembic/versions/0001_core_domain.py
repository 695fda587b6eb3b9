"""Core domain: users, tickets, comments, the event timeline and the login throttle.

Revision ID: 0001_core_domain
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_core_domain"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False, server_default="user"),
        sa.Column("skills", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        # Canonical forms of `skills` (synonyms folded), kept by the service for index-backed matching.
        sa.Column("skill_keys", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.CheckConstraint("role IN ('user', 'moderator', 'admin')", name="ck_users_role"),
    )
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    op.create_index("ix_users_role_active", "users", ["role", "is_active"])
    op.create_index("ix_users_skill_keys", "users", ["skill_keys"], postgresql_using="gin")

    op.execute("CREATE SEQUENCE ticket_number_seq START WITH 1001")
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "number",
            sa.Integer,
            nullable=False,
            unique=True,
            server_default=sa.text("nextval('ticket_number_seq')"),
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="open"),
        sa.Column("priority", sa.String(10)),
        sa.Column("category", sa.String(50)),
        sa.Column("required_skills", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("summary", sa.Text),
        sa.Column("helpful_notes", sa.Text),
        sa.Column("triage_status", sa.String(10), nullable=False, server_default="pending"),
        sa.Column("triage_provider", sa.String(40)),
        sa.Column("triage_confidence", sa.Float),
        sa.Column("triaged_at", sa.DateTime(timezone=True)),
        sa.Column("assigned_to_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("assignment_reason", sa.Text),
        sa.Column("assigned_at", sa.DateTime(timezone=True)),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("created_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.CheckConstraint("status IN ('open', 'in_progress', 'resolved', 'closed')", name="ck_tickets_status"),
        sa.CheckConstraint("priority IS NULL OR priority IN ('low', 'medium', 'high')", name="ck_tickets_priority"),
        sa.CheckConstraint("triage_status IN ('pending', 'done', 'failed')", name="ck_tickets_triage_status"),
    )
    op.execute("ALTER SEQUENCE ticket_number_seq OWNED BY tickets.number")
    op.create_index("ix_tickets_created_by", "tickets", ["created_by_id", sa.text("created_at DESC")])
    op.create_index("ix_tickets_assignee_status", "tickets", ["assigned_to_id", "status"])
    op.create_index("ix_tickets_created_at", "tickets", [sa.text("created_at DESC")])

    op.create_table(
        "ticket_comments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("internal", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_ticket_comments_ticket", "ticket_comments", ["ticket_id", "created_at"])

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("data", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_ticket_events_ticket", "ticket_events", ["ticket_id", "id"])

    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_login_attempts_email_time", "login_attempts", ["email", "created_at"])


def downgrade() -> None:
    op.drop_table("login_attempts")
    op.drop_table("ticket_events")
    op.drop_table("ticket_comments")
    op.drop_table("tickets")
    op.execute("DROP SEQUENCE IF EXISTS ticket_number_seq")
    op.drop_table("users")
