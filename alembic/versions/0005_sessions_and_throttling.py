"""Sessions that end, and throttling that holds across processes.

Revision ID: 0005
Revises: 0004_ticket_queue_indexes
Create Date: 2026-12-02

- `users.token_version`: carried in every access token as the `ver` claim and compared on every use; a
  password change, a role change and deactivation bump it, which revokes all of the user's earlier tokens.
- `revoked_tokens`: the `jti` of each token logged out, kept until the token would have expired anyway.
- `throttle_counters`: one row per (bucket, key), e.g. ('login_pair', 'e-mail|address'): hits in the window
  that started at `window_start`, and an optional block. Replaces `login_attempts` (a row per failure).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004_ticket_queue_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])
    op.create_table(
        "throttle_counters",
        sa.Column("bucket", sa.String(20), primary_key=True),
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("hits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_throttle_counters_window_start", "throttle_counters", ["window_start"])
    op.drop_table("login_attempts")


def downgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_login_attempts_email_time", "login_attempts", ["email", "created_at"])
    op.drop_index("ix_throttle_counters_window_start", table_name="throttle_counters")
    op.drop_table("throttle_counters")
    op.drop_index("ix_revoked_tokens_expires_at", table_name="revoked_tokens")
    op.drop_table("revoked_tokens")
    op.drop_column("users", "token_version")
