"""Ticket embeddings (similar tickets) and stored AI reply drafts.

Revision ID: 0017
Revises: 0019
Create Date: 2026-12-02

- `ticket_embeddings`: one row per ticket, the 512-d sentence embedding of its title and description (the
  offline triage's encoder), which model made it, and when. A table of its own rather than a column of
  `tickets`: the tickets row is updated all day (status, SLA marks, search vectors) and stays narrow; the
  HNSW index lives on a table that only ever gets inserts; and "tickets without an embedding" (the backfill)
  is an anti-join on a primary key.
- With pgvector (the embedded PostgreSQL ships 0.8): `embedding vector(512)` and an HNSW index with cosine
  distance, built here (empty, or over what is there). Without it (`pg_available_extensions` has no
  `vector`, or this role may not create it), the migration still succeeds: `embedding real[]` and no index;
  the app then finds similar tickets by an exact scan in numpy over a bounded number of recent visible
  tickets (services/similar.py). Running the migrations again after installing pgvector does not convert
  the column: see README "Similar tickets".
- `reply_drafts`: a reply written by Gemini for one staff member on one ticket, from the similar tickets that
  person may see (`sources_key` says which: a different set makes it stale). Never sent by itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0019"
branch_labels = None
depends_on = None

DIMENSIONS = 512


def _create_vector_extension() -> bool:
    """True when pgvector is there (created now if needed); False when the server lacks it or we may not."""
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first() is None:
        return False
    try:
        with conn.begin_nested():  # a refused CREATE EXTENSION (not superuser, not trusted) must not abort all
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError:
        return False
    return True


def upgrade() -> None:
    vector = _create_vector_extension()
    embedding_type = f"vector({DIMENSIONS})" if vector else "real[]"
    op.execute(
        f"""
        CREATE TABLE ticket_embeddings (
            ticket_id integer PRIMARY KEY REFERENCES tickets(id) ON DELETE CASCADE,
            embedding {embedding_type} NOT NULL,
            model varchar(40) NOT NULL,
            embedded_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    if vector:
        # Kept in the row: 2,056 bytes is just over the TOAST threshold, and an out-of-line vector costs an
        # extra index lookup per row read by an exact scan (a moderator's similar tickets; bench/README.md).
        op.execute("ALTER TABLE ticket_embeddings ALTER COLUMN embedding SET STORAGE PLAIN")
        # m=16, ef_construction=64 (pgvector's defaults): recall@5 and build time are in bench/README.md.
        op.execute(
            "CREATE INDEX ix_ticket_embeddings_hnsw ON ticket_embeddings USING hnsw (embedding vector_cosine_ops)"
        )
    op.create_table(
        "reply_drafts",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sources_key", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ux_reply_drafts_ticket_user", "reply_drafts", ["ticket_id", "user_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_reply_drafts_ticket_user", table_name="reply_drafts")
    op.drop_table("reply_drafts")
    op.execute("DROP TABLE ticket_embeddings")  # the extension stays: something else may use it
