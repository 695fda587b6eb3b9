"""Account self-service (password reset, e-mail verification) and full-text search over tickets.

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-02

- `users.email_verified_at`: when the person proved they read the address (a verify or reset link). Accounts
  that exist before this migration are counted as verified from their creation: they were made before anyone
  was asked to verify, and flagging every one of them at once would only be noise.
- `account_tokens`: single-use links mailed to a user (password reset, e-mail verification); only the SHA-256
  of each token is stored, so a copy of the table opens nothing.
- Search: the `unaccent` extension, `helpdesk_unaccent(text)` (an IMMUTABLE wrapper, which an index
  expression needs: `unaccent()` itself is only STABLE because its dictionary could change) and
  `helpdesk_search_text(text)` (unaccented, CJK characters spaced out so that each becomes a word and a
  phrase query finds any run of them); `tickets.search_doc` (generated from the title, weight A, and the
  description, weight B), `tickets.search_comments` and `tickets.search_internal` (public replies and internal
  notes, weight C, appended by a trigger on ticket_comments), `tickets.search_all` (generated: the three
  together) and its GIN index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None

# CJK ideographs, kana and halfwidth kana, and Hangul syllables: scripts written without spaces between words.
CJK_CLASS = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af]"

SEARCH_DOC = (
    "setweight(to_tsvector('simple'::regconfig, helpdesk_search_text(title)), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, helpdesk_search_text(description)), 'B')"
)
# Everything staff may search, in one column (generated, so no query concatenates vectors row by row).
SEARCH_ALL = f"{SEARCH_DOC} || search_comments || search_internal"

MISSING_EXTENSION = (
    "Ticket search needs PostgreSQL's '{name}' extension, which this server does not offer "
    "(pg_available_extensions). Install the server's contrib package (Debian: postgresql-contrib) or use the "
    "embedded PostgreSQL, then run the migrations again."
)


def _require_extension(name: str) -> str:
    """Create the extension if needed; its schema. A clear error when the server lacks it."""
    conn = op.get_bind()
    available = conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), {"n": name}).first()
    if available is None:
        raise RuntimeError(MISSING_EXTENSION.format(name=name))
    conn.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS {name}"))
    schema = conn.execute(
        sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = :n"), {"n": name}
    ).scalar_one()
    return str(schema)


def upgrade() -> None:
    op.add_column("users", sa.Column("email_verified_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE users SET email_verified_at = created_at")
    op.create_table(
        "account_tokens",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("purpose IN ('password_reset', 'verify_email')", name="ck_account_tokens_purpose"),
    )
    op.create_index("ix_account_tokens_user", "account_tokens", ["user_id", "purpose"])
    op.create_index("ix_account_tokens_expires_at", "account_tokens", ["expires_at"])

    schema = _require_extension("unaccent")
    op.execute(
        f"""
        CREATE FUNCTION helpdesk_unaccent(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        AS $$ SELECT {schema}.unaccent('{schema}.unaccent'::regdictionary, $1) $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION helpdesk_search_text(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        AS $$ SELECT regexp_replace(helpdesk_unaccent($1), '({CJK_CLASS})', ' \\1 ', 'g') $$
        """
    )
    op.add_column("tickets", sa.Column("search_doc", TSVECTOR, sa.Computed(SEARCH_DOC, persisted=True)))
    op.add_column("tickets", sa.Column("search_comments", TSVECTOR, server_default="", nullable=False))
    op.add_column("tickets", sa.Column("search_internal", TSVECTOR, server_default="", nullable=False))
    # Comments already there: into the vectors once (each ticket's bodies as one text, in comment order).
    op.execute(
        """
        UPDATE tickets t SET search_comments = c.public, search_internal = c.internal
        FROM (
            SELECT ticket_id,
                   setweight(to_tsvector('simple'::regconfig, helpdesk_search_text(coalesce(
                       string_agg(body, E'\\n' ORDER BY created_at, id) FILTER (WHERE NOT internal), ''))), 'C')
                       AS public,
                   setweight(to_tsvector('simple'::regconfig, helpdesk_search_text(coalesce(
                       string_agg(body, E'\\n' ORDER BY created_at, id) FILTER (WHERE internal), ''))), 'C')
                       AS internal
            FROM ticket_comments GROUP BY ticket_id
        ) AS c
        WHERE c.ticket_id = t.id
        """
    )
    op.execute(
        """
        CREATE FUNCTION helpdesk_comment_search() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.internal THEN
                UPDATE tickets SET search_internal = search_internal
                    || setweight(to_tsvector('simple'::regconfig, helpdesk_search_text(NEW.body)), 'C')
                WHERE id = NEW.ticket_id;
            ELSE
                UPDATE tickets SET search_comments = search_comments
                    || setweight(to_tsvector('simple'::regconfig, helpdesk_search_text(NEW.body)), 'C')
                WHERE id = NEW.ticket_id;
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER ticket_comments_search AFTER INSERT ON ticket_comments "
        "FOR EACH ROW EXECUTE FUNCTION helpdesk_comment_search()"
    )
    op.add_column("tickets", sa.Column("search_all", TSVECTOR, sa.Computed(SEARCH_ALL, persisted=True)))
    op.create_index("ix_tickets_search", "tickets", ["search_all"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_tickets_search", table_name="tickets")
    op.drop_column("tickets", "search_all")
    op.execute("DROP TRIGGER IF EXISTS ticket_comments_search ON ticket_comments")
    op.execute("DROP FUNCTION IF EXISTS helpdesk_comment_search()")
    op.drop_column("tickets", "search_internal")
    op.drop_column("tickets", "search_comments")
    op.drop_column("tickets", "search_doc")
    op.execute("DROP FUNCTION IF EXISTS helpdesk_search_text(text)")
    op.execute("DROP FUNCTION IF EXISTS helpdesk_unaccent(text)")
    # The unaccent extension stays: other objects of the database may use it.
    op.drop_index("ix_account_tokens_expires_at", table_name="account_tokens")
    op.drop_index("ix_account_tokens_user", table_name="account_tokens")
    op.drop_table("account_tokens")
    op.drop_column("users", "email_verified_at")
