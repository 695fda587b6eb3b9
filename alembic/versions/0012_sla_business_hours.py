"""SLAs that keep office hours: a pending status, first-response and pause bookkeeping, warning stamps.

Revision ID: 0012
Revises: 0015
Create Date: 2026-12-02

- `tickets.status` may be 'pending' (waiting on the requester). Pending tickets are still active (someone's
  work), so the two partial queue indexes of 0004 are rebuilt with the wider predicate (on a large
  installation, in a maintenance window: the rebuild locks writes to tickets while it runs).
- `first_response_due_at` / `first_responded_at`: the first public staff reply's target and when it came.
- `sla_paused_at` (when the resolution clock stopped: pending, resolved or closed) and `sla_paused_seconds`
  (business seconds it stood still so far: `due_at` moves out by them).
- `*_warn_at`: the moment a target is SLA_WARNING_PERCENT gone, computed in business time with the due
  times, so the worker's check is a plain indexed comparison; `*_warned_at` / `*_breach_mailed_at`: the stamps
  that make each warning and breach mail go out once, whatever the number of workers (tickets already past due
  are stamped here, so the first check after the upgrade does not mail the admins about each of them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0015"
branch_labels = None
depends_on = None

# Copies, not imports: a migration must keep meaning what it meant when it was written.
_OLD_STATUSES = "status IN ('open', 'in_progress', 'resolved', 'closed')"
_NEW_STATUSES = "status IN ('open', 'in_progress', 'pending', 'resolved', 'closed')"
_OLD_ACTIVE = "status IN ('open', 'in_progress')"
_ACTIVE = "status IN ('open', 'in_progress', 'pending')"
_RUNNING = "status IN ('open', 'in_progress')"
_STAMPS = (
    "first_response_due_at",
    "first_responded_at",
    "first_response_warn_at",
    "first_response_warned_at",
    "first_response_breach_mailed_at",
    "sla_warn_at",
    "sla_warned_at",
    "sla_breach_mailed_at",
    "sla_paused_at",
)


def _queue_indexes(predicate: str) -> None:
    op.create_index(
        "ix_tickets_queue", "tickets", ["priority_rank", "due_at", "id"], postgresql_where=sa.text(predicate)
    )
    op.create_index(
        "ix_tickets_assignee_queue",
        "tickets",
        ["assigned_to_id", "priority_rank", "due_at", "id"],
        postgresql_where=sa.text(predicate),
    )


def upgrade() -> None:
    op.drop_constraint("ck_tickets_status", "tickets")
    op.create_check_constraint("ck_tickets_status", "tickets", _NEW_STATUSES)
    for name in _STAMPS:
        op.add_column("tickets", sa.Column(name, sa.DateTime(timezone=True)))
    op.add_column("tickets", sa.Column("sla_paused_seconds", sa.Integer, server_default="0", nullable=False))
    # Tickets already past due are counted as told: an upgrade must not mail the admins about every old one.
    op.execute("UPDATE tickets SET sla_breach_mailed_at = now() WHERE due_at <= now()")
    op.drop_index("ix_tickets_assignee_queue", table_name="tickets")
    op.drop_index("ix_tickets_queue", table_name="tickets")
    _queue_indexes(_ACTIVE)
    # The worker's SLA check (services/sla.py): each index holds only the tickets still waiting for that mail,
    # so it stays small however many tickets there are.
    op.create_index(
        "ix_tickets_sla_warn",
        "tickets",
        ["sla_warn_at"],
        postgresql_where=sa.text(f"sla_warned_at IS NULL AND {_RUNNING}"),
    )
    op.create_index(
        "ix_tickets_sla_breach",
        "tickets",
        ["due_at"],
        postgresql_where=sa.text(f"sla_breach_mailed_at IS NULL AND {_RUNNING}"),
    )
    op.create_index(
        "ix_tickets_first_response_warn",
        "tickets",
        ["first_response_warn_at"],
        postgresql_where=sa.text(f"first_responded_at IS NULL AND first_response_warned_at IS NULL AND {_ACTIVE}"),
    )
    op.create_index(
        "ix_tickets_first_response_breach",
        "tickets",
        ["first_response_due_at"],
        postgresql_where=sa.text(
            f"first_responded_at IS NULL AND first_response_breach_mailed_at IS NULL AND {_ACTIVE}"
        ),
    )


def downgrade() -> None:
    for name in (
        "ix_tickets_first_response_breach",
        "ix_tickets_first_response_warn",
        "ix_tickets_sla_breach",
        "ix_tickets_sla_warn",
        "ix_tickets_assignee_queue",
        "ix_tickets_queue",
    ):
        op.drop_index(name, table_name="tickets")
    _queue_indexes(_OLD_ACTIVE)
    op.execute("UPDATE tickets SET status = 'in_progress' WHERE status = 'pending'")
    op.drop_constraint("ck_tickets_status", "tickets")
    op.create_check_constraint("ck_tickets_status", "tickets", _OLD_STATUSES)
    op.drop_column("tickets", "sla_paused_seconds")
    for name in reversed(_STAMPS):
        op.drop_column("tickets", name)
