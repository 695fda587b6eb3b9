"""The moderators' covering search index holds only text vectors that fit in an index row (issue 15).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03

Migration 0019 covered `search_all` in `ix_tickets_assignee_search`. A btree row holds at most 2,704 bytes, so a
ticket whose words make a larger vector (a long mail, a pasted log, many comments) could not be assigned: the
INSERT or UPDATE failed with "index row size ... exceeds btree version 4 maximum". Here:

- `ix_tickets_assignee_search` keeps the same columns for the tickets whose vector is compact, i.e. whose text
  form is at most 1,400 bytes (`octet_length(search_all::text) <= 1400`; the stored form is at most about 1.7
  times the text form plus 8 bytes, so at most about 2,400 bytes, with the other columns still under the limit);
- `ix_tickets_assignee_large` on (assigned_to_id, id) for the others, which search reads from the table.

Search (services/search.py, COMPACT) states the same condition so that PostgreSQL picks the partial indexes.
Plain CREATE INDEX: it locks writes to tickets while it builds (seconds at a million rows, see bench/README.md).
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

COMPACT = "octet_length(search_all::text) <= 1400"


def _covering(where: str | None) -> None:
    op.create_index(
        "ix_tickets_assignee_search",
        "tickets",
        ["assigned_to_id", "id"],
        postgresql_include=["created_by_id", "status", "number", "search_all"],
        postgresql_where=where,
    )


def upgrade() -> None:
    op.drop_index("ix_tickets_assignee_search", table_name="tickets")
    _covering(COMPACT)
    op.create_index(
        "ix_tickets_assignee_large", "tickets", ["assigned_to_id", "id"], postgresql_where=f"NOT ({COMPACT})"
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_assignee_large", table_name="tickets")
    op.drop_index("ix_tickets_assignee_search", table_name="tickets")
    _covering(None)  # as 0019 made it (fails where a vector is too large for it)
