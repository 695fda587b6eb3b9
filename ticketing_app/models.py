"""SQLAlchemy models. The schema itself comes only from the Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    Sequence,
    SmallInteger,
    String,
    Text,
    func,
    literal_column,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import UserDefinedType

from ticketing_app.domain import (
    ACTIVE_STATUSES,
    AccountTokenPurpose,
    CommentVia,
    CorrectionField,
    EmailStatus,
    InboundSource,
    InboundStatus,
    JobStatus,
    Priority,
    Rating,
    Role,
    TicketStatus,
    TriageStatus,
    sql_in,
    ticket_reference,
)

ticket_number_seq = Sequence("ticket_number_seq", start=1001)

# Queue order: high, medium, low, then not yet triaged. Stored (migration 0004) so that the queue indexes
# can hold it; that migration writes out the same expression.
PRIORITY_RANK_SQL = (
    f"CASE priority {' '.join(f'WHEN {str(p)!r} THEN {p.rank}' for p in Priority)} ELSE {len(Priority)} END"
)

# The search document of a ticket; migration 0010 writes out the same expression.
SEARCH_DOC_SQL = (
    "setweight(to_tsvector('simple'::regconfig, helpdesk_search_text(title)), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, helpdesk_search_text(description)), 'B')"
)


class Vector(UserDefinedType[Any]):
    """pgvector's `vector(512)`, written and read in its text form ('[0.1,0.2,...]'); no Python package needed."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "vector(512)"


class Base(DeclarativeBase):
    """Declarative base for all tables."""


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # clock_timestamp(), not now(): now() is when the transaction began, so a long transaction committing
    # after a short one would stamp its change earlier, and a poller of max(updated_at) (the live pages'
    # change marker) that looked in between would never see it. The time of the write itself keeps
    # commits and stamps in the same order unless two writes race within their own commits.
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.clock_timestamp()
    )


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(sql_in("role", Role), name="ck_users_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254))  # stored lower-cased; unique index on lower(email)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default=Role.USER)
    skills: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    skill_keys: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)  # canonical, for matching
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # In every access token (the `ver` claim) and compared on each use: bumping it revokes the user's tokens.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Notification mail kinds (EmailKind) this person turned off; account mails are always sent.
    muted_email_kinds: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    # When they proved they read the address (a verify or reset link); None: not yet (README "Accounts").
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class Ticket(TimestampMixin, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(sql_in("status", TicketStatus), name="ck_tickets_status"),
        CheckConstraint(f"priority IS NULL OR {sql_in('priority', Priority)}", name="ck_tickets_priority"),
        CheckConstraint(sql_in("triage_status", TriageStatus), name="ck_tickets_triage_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(
        Integer, ticket_number_seq, server_default=ticket_number_seq.next_value(), unique=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=TicketStatus.OPEN)
    priority: Mapped[str | None] = mapped_column(String(10))
    priority_rank: Mapped[int] = mapped_column(SmallInteger, Computed(PRIORITY_RANK_SQL, persisted=True))
    category: Mapped[str | None] = mapped_column(String(50))
    required_skills: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    summary: Mapped[str | None] = mapped_column(Text)
    helpful_notes: Mapped[str | None] = mapped_column(Text)
    triage_status: Mapped[str] = mapped_column(String(10), default=TriageStatus.PENDING)
    triage_provider: Mapped[str | None] = mapped_column(String(40))
    triage_confidence: Mapped[float | None] = mapped_column(Float)
    # The triage's confidence was below TRIAGE_REVIEW_THRESHOLD: staff should check category and priority.
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    triaged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assignment_reason: Mapped[str | None] = mapped_column(Text)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # SLAs (services/sla.py, migration 0012). due_at above is the resolution target; *_warn_at are the moments
    # a target is SLA_WARNING_PERCENT gone; the *_warned_at / *_breach_mailed_at stamps make each mail go once.
    first_response_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_breach_mailed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_breach_mailed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the resolution clock stopped (pending, resolved, closed; None while it runs), and the business
    # seconds it stood still before: due_at moves out by them.
    sla_paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_paused_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set once this ticket was merged, as a duplicate, into another (services/merge.py, migration 0018).
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))

    # Full-text search (migration 0010, services/search.py): title and description (generated), public
    # replies and internal notes (appended by a trigger on ticket_comments), and all of it in one generated
    # column (the GIN-indexed one). Deferred: only search reads them.
    search_doc: Mapped[Any] = mapped_column(TSVECTOR, Computed(SEARCH_DOC_SQL, persisted=True), deferred=True)
    search_comments: Mapped[Any] = mapped_column(TSVECTOR, server_default="", deferred=True)
    search_internal: Mapped[Any] = mapped_column(TSVECTOR, server_default="", deferred=True)
    search_all: Mapped[Any] = mapped_column(
        TSVECTOR, Computed(f"{SEARCH_DOC_SQL} || search_comments || search_internal", persisted=True), deferred=True
    )

    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id], lazy="joined")
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id], lazy="joined")
    # One query for a whole page of tickets (selectin), none on intake's path (it builds its output itself).
    satisfaction: Mapped[SatisfactionRating | None] = relationship(lazy="selectin", viewonly=True)
    # The merge links, both ways: selectin, one query per page of tickets (none for merged_into when nothing on
    # the page was merged). join_depth=1: a self-referential eager load otherwise never starts, and each ticket
    # would read its links one by one.
    merged_into: Mapped[Ticket | None] = relationship(
        foreign_keys=[merged_into_id], remote_side=[id], lazy="selectin", viewonly=True, join_depth=1
    )
    merged_from: Mapped[list[Ticket]] = relationship(
        foreign_keys=[merged_into_id], lazy="selectin", viewonly=True, order_by="Ticket.id", join_depth=1
    )
    # Loaded only when a visibility check gets that far (the requester, assignee and admins never need it).
    followers: Mapped[list[TicketFollower]] = relationship(lazy="select", viewonly=True)

    @property
    def reference(self) -> str:
        """The number people use: TCK-1042."""
        return ticket_reference(self.number)


# "Open or in progress" with the values written into the SQL, not bound: the partial queue indexes
# (migration 0004) serve a query only when the planner can prove their predicate, which it cannot do for a
# parameter in a prepared statement's generic plan.
TICKET_IS_ACTIVE = Ticket.status.in_([literal_column(repr(str(status))) for status in ACTIVE_STATUSES])


class TicketFollower(Base):
    """Someone on the requester's side of a ticket besides its requester (e.g. a merged duplicate's requester):
    they see it as the requester does (no internal notes), may reply, and get the requester's mails."""

    __tablename__ = "ticket_followers"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class Comment(Base):
    __tablename__ = "ticket_comments"
    __table_args__ = (CheckConstraint(sql_in("via", CommentVia), name="ck_ticket_comments_via"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    via: Mapped[str] = mapped_column(String(10), default=CommentVia.WEB, server_default=CommentVia.WEB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    author: Mapped[User] = relationship(lazy="joined")


class Attachment(Base):
    """A file on a ticket (comment_id None: attached to the ticket itself). The bytes live in PostgreSQL so
    that every web process on every host sees them."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_comments.id", ondelete="CASCADE"))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))  # sniffed from the bytes, never from the name
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    # A small re-encoded copy of an image, shown inline on the ticket page (migration 0009); None otherwise.
    preview: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CannedReply(TimestampMixin, Base):
    """A reply staff share and insert with one click; `{{placeholders}}` are filled in per ticket."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(100))  # unique, case-insensitively (migration 0013)
    body: Mapped[str] = mapped_column(Text)
    # Set on the ticket when the reply is sent; checked against TicketStatus on input (no CHECK constraint, so
    # that a new status needs no migration here).
    status: Mapped[str | None] = mapped_column(String(20))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    created_by: Mapped[User] = relationship(lazy="joined")


class TicketEvent(Base):
    """One line of a ticket's audit timeline."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the system (AI, router)
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    actor: Mapped[User | None] = relationship(lazy="joined")


class SatisfactionRating(Base):
    """The requester's rating of a resolved ticket: one per ticket, the latest click wins."""

    __tablename__ = "satisfaction_ratings"
    __table_args__ = (CheckConstraint(sql_in("rating", Rating), name="ck_satisfaction_rating"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    rating: Mapped[str] = mapped_column(String(4))
    comment: Mapped[str | None] = mapped_column(Text)
    rated_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Who worked the ticket when it was rated: the overview credits them, not whoever holds it later.
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    category: Mapped[str | None] = mapped_column(String(50))
    rated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SavedFilter(Base):
    """A person's named queue / list filter (TicketFilters as JSON)."""

    __tablename__ = "saved_filters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))  # unique per person, ignoring case (migration 0016)
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TicketViewer(Base):
    """Staff who have a ticket open, and whether they are typing a reply (collision detection).

    Written about once a second per open page, read by the others: an UNLOGGED table (migration 0014), not
    WAL-logged or replicated, and emptied by a crash, which is right for who-is-here-now.
    """

    __tablename__ = "ticket_viewers"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    typing_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TriageCorrection(Base):
    """A staff change of a triaged ticket's category, priority or assignee: a labelled example for the offline
    triage (the ticket's text is read from the ticket; `skills` are the new assignee's, for routing)."""

    __tablename__ = "triage_corrections"
    __table_args__ = (CheckConstraint(sql_in("field", CorrectionField), name="ck_triage_corrections_field"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(20))
    ai_value: Mapped[str | None] = mapped_column(Text)
    staff_value: Mapped[str] = mapped_column(Text)
    skills: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RevokedToken(Base):
    """A logged-out access token (its `jti`), kept until it would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccountToken(Base):
    """A single-use link mailed to a user (password reset, e-mail verification); only its SHA-256 is kept."""

    __tablename__ = "account_tokens"
    __table_args__ = (CheckConstraint(sql_in("purpose", AccountTokenPurpose), name="ck_account_tokens_purpose"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ThrottleCounter(Base):
    """Hits of one throttle bucket and key in the window from `window_start`, in the database so that the
    limits hold across processes (services/throttle.py)."""

    __tablename__ = "throttle_counters"

    bucket: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    hits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """A durable unit of background work, claimed by workers with FOR UPDATE SKIP LOCKED."""

    __tablename__ = "jobs"
    __table_args__ = (CheckConstraint(sql_in("status", JobStatus), name="ck_jobs_status"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # A job with a dedupe key is enqueued at most once (e.g. one assignment per ticket).
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=JobStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=6)
    run_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmailMessage(Base):
    """Every e-mail the system means to send, with its delivery state."""

    __tablename__ = "emails"
    __table_args__ = (CheckConstraint(sql_in("status", EmailStatus), name="ck_emails_status"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=EmailStatus.PENDING)
    transport: Mapped[str | None] = mapped_column(String(20))
    message_id: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Extra headers the sender writes (Reply-To, threading, List-Unsubscribe), validated again when sent.
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InboundEmail(Base):
    """A mail that came in, stored raw before anything else happens to it (then parsed by a job)."""

    __tablename__ = "inbound_emails"
    __table_args__ = (
        CheckConstraint(sql_in("source", InboundSource), name="ck_inbound_emails_source"),
        CheckConstraint(sql_in("status", InboundStatus), name="ck_inbound_emails_status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Unique: the same message delivered twice (or by SMTP and IMAP) is stored once. A mail without one gets
    # <sha256-of-its-bytes@inbound.invalid>.
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    source: Mapped[str] = mapped_column(String(10))
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size: Mapped[int] = mapped_column(Integer)
    envelope_from: Mapped[str | None] = mapped_column(String(998))
    envelope_to: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    status: Mapped[str] = mapped_column(String(10), default=InboundStatus.RECEIVED)
    outcome: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_comments.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TicketEmbedding(Base):
    """A ticket's sentence embedding (title and description), for similar tickets (services/similar.py).

    `embedding` is `vector(512)` with an HNSW index where the server has pgvector, `real[]` otherwise
    (migration 0017); services/embeddings.py reads and writes it in either form. The visibility columns are the
    ticket's, never written by the app: triggers copy them on insert and when the ticket changes (migration 0020).
    """

    __tablename__ = "ticket_embeddings"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    embedding: Mapped[Any] = mapped_column(Vector())
    model: Mapped[str] = mapped_column(String(40))
    embedded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The ticket's, copied by triggers (migration 0020) so a viewer's embeddings are found without `tickets`.
    assigned_to_id: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReplyDraft(Base):
    """A reply Gemini wrote for one staff member on one ticket (never sent by itself; services/drafts.py)."""

    __tablename__ = "reply_drafts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sources_key: Mapped[str] = mapped_column(String(200))  # the similar tickets it was written from
    body: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
