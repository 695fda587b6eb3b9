"""Indexes for reading someone's tickets newest first in search (issue 15, search at a million tickets).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02

Search reads each part of what a person may see newest first and tests the words on each ticket
(services/search.py, _part_matches), instead of building the GIN bitmap of a frequent word:

- `ix_tickets_assignee_search` on (assigned_to_id, id), covering created_by_id, status, number and search_all:
  the tickets a moderator works, newest first, with everything the test needs, so that reading 20,000 of them
  touches the index only (about 8 ms at a million tickets) rather than 20,000 table pages (over 100 ms). Its size
  is about that of the search_all column (550 MB at a million tickets in the bench).
- `ix_tickets_requester_id` on (created_by_id, id): the tickets someone filed, newest first (the older
  `ix_tickets_created_by` is ordered by created_at).

Plain CREATE INDEX: it locks writes to tickets while it builds (seconds at a million rows, see bench/README.md).
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_tickets_assignee_search",
        "tickets",
        ["assigned_to_id", "id"],
        postgresql_include=["created_by_id", "status", "number", "search_all"],
    )
    op.create_index("ix_tickets_requester_id", "tickets", ["created_by_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_requester_id", table_name="tickets")
    op.drop_index("ix_tickets_assignee_search", table_name="tickets")
