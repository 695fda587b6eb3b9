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

from ticketing_app.domain import (
    ACTIVE_STATUSES,
    AccountTokenPurpose,
    CommentVia,
    EmailStatus,
    JobStatus,
    Priority,
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
    triaged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assignment_reason: Mapped[str | None] = mapped_column(Text)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

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

    @property
    def reference(self) -> str:
        """The number people use: TCK-1042."""
        return ticket_reference(self.number)


# "Open or in progress" with the values written into the SQL, not bound: the partial queue indexes
# (migration 0004) serve a query only when the planner can prove their predicate, which it cannot do for a
# parameter in a prepared statement's generic plan.
TICKET_IS_ACTIVE = Ticket.status.in_([literal_column(repr(str(status))) for status in ACTIVE_STATUSES])


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
