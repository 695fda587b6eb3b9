"""Notification preferences and per-mail headers.

Revision ID: 0007
Revises: 0014
Create Date: 2026-12-02

- `users.muted_email_kinds`: the notification mail kinds a person turned off (settings page, REST, one-click
  unsubscribe); empty for everyone to start with.
- `emails.headers`: extra headers of an outbox mail (Reply-To with the signed reply address, X-Helpdesk-Token,
  In-Reply-To / References for threading, List-Unsubscribe and List-Unsubscribe-Post).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0007"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("muted_email_kinds", ARRAY(sa.Text), server_default="{}", nullable=False))
    op.add_column("emails", sa.Column("headers", JSONB, server_default="{}", nullable=False))


def downgrade() -> None:
    op.drop_column("emails", "headers")
    op.drop_column("users", "muted_email_kinds")
