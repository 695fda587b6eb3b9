"""Who may see a ticket, copied onto its embedding row, so a moderator's similar tickets never join `tickets`.

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-02

A moderator sees a small share of the tickets (their own, the ones they filed or follow). Their similar tickets
are an exact scan over those tickets' vectors (services/similar.py); joined to `tickets` for visibility it read
about 12,000 scattered buffers at 200,000 tickets and took p99 143 ms (bench/README.md). Here:

- `ticket_embeddings` gets `assigned_to_id`, `created_by_id` and `created_at` (the ticket's, for "earlier than
  this one"), with btree indexes (assigned_to_id, created_at, ticket_id) and (created_by_id, created_at,
  ticket_id): a viewer's earlier embeddings are read through an index, and only their rows.
- They are kept in step by triggers, the one place every path goes through (routing, manual and bulk
  reassignment, re-routing on demotion, merge, plain SQL): a BEFORE INSERT trigger on `ticket_embeddings` copies
  them from the ticket (the backfill, the triage job and a bulk COPY all insert), and an AFTER UPDATE trigger on
  `tickets`, which fires only when one of the three columns really changes (the WHEN clause is checked without
  calling the function), copies the new values.
- Followers are not copied: a follower's tickets are read by primary key from `ticket_followers` at query time.
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE ticket_embeddings
            ADD COLUMN assigned_to_id integer,
            ADD COLUMN created_by_id integer,
            ADD COLUMN created_at timestamptz
        """
    )
    op.execute(
        """
        UPDATE ticket_embeddings e
        SET assigned_to_id = t.assigned_to_id, created_by_id = t.created_by_id, created_at = t.created_at
        FROM tickets t WHERE t.id = e.ticket_id
        """
    )
    op.execute("ALTER TABLE ticket_embeddings ALTER COLUMN created_by_id SET NOT NULL")
    op.execute("ALTER TABLE ticket_embeddings ALTER COLUMN created_at SET NOT NULL")
    op.execute(
        """
        CREATE FUNCTION ticket_embeddings_copy_visibility() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            SELECT t.assigned_to_id, t.created_by_id, t.created_at
            INTO NEW.assigned_to_id, NEW.created_by_id, NEW.created_at
            FROM tickets t WHERE t.id = NEW.ticket_id;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER ticket_embeddings_visibility BEFORE INSERT ON ticket_embeddings
        FOR EACH ROW EXECUTE FUNCTION ticket_embeddings_copy_visibility()
        """
    )
    op.execute(
        """
        CREATE FUNCTION tickets_sync_embedding_visibility() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE ticket_embeddings
            SET assigned_to_id = NEW.assigned_to_id, created_by_id = NEW.created_by_id, created_at = NEW.created_at
            WHERE ticket_id = NEW.id;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER tickets_embedding_visibility
        AFTER UPDATE OF assigned_to_id, created_by_id, created_at ON tickets
        FOR EACH ROW
        WHEN (OLD.assigned_to_id IS DISTINCT FROM NEW.assigned_to_id
              OR OLD.created_by_id IS DISTINCT FROM NEW.created_by_id
              OR OLD.created_at IS DISTINCT FROM NEW.created_at)
        EXECUTE FUNCTION tickets_sync_embedding_visibility()
        """
    )
    op.create_index("ix_ticket_embeddings_assignee", "ticket_embeddings", ["assigned_to_id", "created_at", "ticket_id"])
    op.create_index("ix_ticket_embeddings_requester", "ticket_embeddings", ["created_by_id", "created_at", "ticket_id"])


def downgrade() -> None:
    op.execute("DROP TRIGGER tickets_embedding_visibility ON tickets")
    op.execute("DROP FUNCTION tickets_sync_embedding_visibility()")
    op.execute("DROP TRIGGER ticket_embeddings_visibility ON ticket_embeddings")
    op.execute("DROP FUNCTION ticket_embeddings_copy_visibility()")
    op.drop_index("ix_ticket_embeddings_requester", table_name="ticket_embeddings")
    op.drop_index("ix_ticket_embeddings_assignee", table_name="ticket_embeddings")
    op.execute(
        "ALTER TABLE ticket_embeddings DROP COLUMN assigned_to_id, DROP COLUMN created_by_id, DROP COLUMN created_at"
    )
