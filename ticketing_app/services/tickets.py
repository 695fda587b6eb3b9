"""Tickets: create, list, read, update and comment, with the visibility and role rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select, text
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session, selectinload

from ticketing_app.asyncdb import AutocommitPool
from ticketing_app.config import get_settings
from ticketing_app.domain import (
    STAFF_ROLES,
    CommentVia,
    CorrectionField,
    EventKind,
    JobKind,
    Role,
    ThrottleBucket,
    TicketStatus,
    TriageStatus,
    ticket_reference,
)
from ticketing_app.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from ticketing_app.jobs import queue
from ticketing_app.models import TICKET_IS_ACTIVE, Comment, Ticket, TicketEvent, User
from ticketing_app.schemas import (
    MAX_ID,
    CommentCreate,
    CommentOut,
    EventOut,
    Page,
    SatisfactionOut,
    TicketCreate,
    TicketDetail,
    TicketFilters,
    TicketOut,
    TicketRef,
    TicketUpdate,
    UserOut,
)
from ticketing_app.security import AccessClaims
from ticketing_app.services import attachments, corrections, events, notifications, search, sla, throttle
from ticketing_app.services.accounts import SESSION_INVALID, assignable_staff
from ticketing_app.services.visibility import (
    can_manage,
    can_see,
    is_requester_side,
    sees_staff_view,
    visible_tickets,
    visible_tickets_assigned_to,
)

# Allowed status moves. Reopening (resolved/closed -> open) is allowed.
TRANSITIONS: dict[str, set[str]] = {
    TicketStatus.OPEN: {TicketStatus.IN_PROGRESS, TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED},
    TicketStatus.IN_PROGRESS: {TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED},
    # Waiting on the requester (the SLA clock pauses); their reply moves it back to in progress by itself.
    TicketStatus.PENDING: {TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED, TicketStatus.CLOSED},
    TicketStatus.RESOLVED: {TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.CLOSED},
    TicketStatus.CLOSED: {TicketStatus.OPEN},
}
# What a requester may do to their own ticket: reopen it, or close it.
REQUESTER_TRANSITIONS: dict[str, set[str]] = {
    TicketStatus.RESOLVED: {TicketStatus.OPEN, TicketStatus.CLOSED},
    TicketStatus.CLOSED: {TicketStatus.OPEN},
}


def full_ticket_out(session: Session, ticket: Ticket, actor: User) -> TicketOut:
    """`ticket_out` with the files on the ticket (one query, no bytes)."""
    by_ticket, _ = attachments.visible_attachments(session, [ticket.id])
    return ticket_out(ticket, actor).model_copy(update={"attachments": by_ticket.get(ticket.id, [])})


def ticket_out(ticket: Ticket, actor: User) -> TicketOut:
    """The ticket as `actor` may see it: agent-only fields are blank for requesters (no files: see
    full_ticket_out)."""
    staff = sees_staff_view(actor, ticket)
    return TicketOut(
        id=ticket.id,
        number=ticket.reference,
        title=ticket.title,
        description=ticket.description,
        status=ticket.status,
        priority=ticket.priority,
        category=ticket.category,
        required_skills=list(ticket.required_skills or []),
        summary=ticket.summary,
        helpful_notes=ticket.helpful_notes if staff else None,
        triage_status=ticket.triage_status,
        triage_provider=ticket.triage_provider,
        triage_confidence=ticket.triage_confidence,
        needs_review=bool(ticket.needs_review) if staff else False,
        assigned_to=_person(events.user_brief(ticket.assigned_to), actor, staff),
        assignment_reason=ticket.assignment_reason if staff else None,
        created_by=events.user_brief(ticket.created_by),
        due_at=ticket.due_at,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        resolved_at=ticket.resolved_at,
        satisfaction=SatisfactionOut.model_validate(ticket.satisfaction) if ticket.satisfaction else None,
        first_response_due_at=ticket.first_response_due_at,
        first_responded_at=ticket.first_responded_at,
        sla=sla.sla_out(ticket),
        merged_into=_ref(ticket.merged_into),
        merged_from=[TicketRef(id=t.id, number=t.reference) for t in ticket.merged_from],
    )


def _ref(ticket: Ticket | None) -> TicketRef | None:
    return None if ticket is None else TicketRef(id=ticket.id, number=ticket.reference)


def create_ticket(
    session: Session | Connection,
    actor: User,
    data: TicketCreate,
    *,
    address: str | None = None,
    via: CommentVia | None = None,
) -> TicketOut:
    """Save a ticket filed by `actor`, with its audit event and its triage job, in one statement.

    Any active user may file one; the check is part of the statement (no row for an unknown or deactivated
    user, or a revoked token -> NotAuthenticated), and so are the rate limits (TICKETS_MAX_PER_USER and
    TICKETS_MAX_PER_ADDRESS per RATE_WINDOW_SECONDS -> TooManyAttempts). The triage job is written in the
    same transaction, so a ticket is never forgotten; idle workers are woken (NOTIFY) when it commits. This
    is the busiest write path (every POST /api/tickets), hence one round trip instead of an ORM unit of
    work (see bench/README.md). `via` (e.g. e-mail) is recorded on the 'created' event.
    """
    params = _create_params(actor.id, actor.token_version or 0, None, address, data)
    params["via"] = str(via) if via else None
    return _created(session.execute(_CREATE, params).first(), actor.id, data)


async def create_ticket_async(
    pool: AutocommitPool, claims: AccessClaims, data: TicketCreate, *, address: str | None = None
) -> TicketOut:
    """`create_ticket` on the event loop (the API's intake endpoint): the same statement, on its own, which
    also checks the token against the database (its user's token version, and that it was not logged out)."""
    params = _create_params(claims.user_id, claims.version, claims.jti, address, data)
    return _created(await pool.fetch_one(_CREATE_PSYCOPG, params), claims.user_id, data)


def _create_params(
    actor_id: int, version: int, jti: str | None, address: str | None, data: TicketCreate
) -> dict[str, Any]:
    settings = get_settings()
    return {
        "actor_id": actor_id,
        "token_version": version,
        "jti": jti,
        "address": (address or "")[:400],
        "max_per_user": settings.tickets_max_per_user,
        "max_per_address": settings.tickets_max_per_address if address is not None else 0,
        "window": settings.rate_window_seconds,
        "title": data.title,
        "description": data.description,
        "max_attempts": settings.job_max_attempts,
        "channel": queue.NOTIFY_CHANNEL,
        "via": None,
    }


def _created(row: Any, actor_id: int, data: TicketCreate) -> TicketOut:
    """The new ticket as its requester sees it, from what the statement returned (no second read)."""
    if row is None:
        raise NotAuthenticated(SESSION_INVALID)
    if row.retry_after is not None:
        raise throttle.too_many("You are filing tickets too quickly.", row.retry_after)
    requester = _Requester(id=actor_id, name=row.actor_name, email=row.actor_email)
    ticket = _FiledTicket(
        id=row.id,
        number=row.number,
        title=data.title,
        description=data.description,
        created_by_id=actor_id,
        created_by=requester,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
    return ticket_out(ticket, requester)  # type: ignore[arg-type]  # read like a Ticket and a User


# A just-filed ticket and its requester as ticket_out reads them. Plain objects rather than transient ORM
# instances: building and reading those costs intake, the busiest path, several times the output itself.
@dataclass(frozen=True, slots=True)
class _Requester:
    id: int
    name: str
    email: str
    role: str | None = None  # not read by the statement; staff or not, a new ticket has nothing staff-only


@dataclass(frozen=True, slots=True)
class _FiledTicket:
    id: int
    number: int
    title: str
    description: str
    created_by_id: int
    created_by: _Requester
    created_at: datetime
    updated_at: datetime
    status: str = TicketStatus.OPEN
    priority: str | None = None
    category: str | None = None
    required_skills: tuple[str, ...] = ()
    summary: str | None = None
    helpful_notes: str | None = None
    triage_status: str = TriageStatus.PENDING
    triage_provider: str | None = None
    triage_confidence: float | None = None
    needs_review: bool = False
    assigned_to_id: int | None = None
    assigned_to: None = None
    assignment_reason: str | None = None
    due_at: datetime | None = None
    resolved_at: datetime | None = None
    satisfaction: None = None
    first_response_due_at: datetime | None = None
    first_responded_at: datetime | None = None
    sla_paused_at: datetime | None = None
    merged_into: None = None
    merged_from: tuple[()] = ()

    @property
    def reference(self) -> str:
        return ticket_reference(self.number)


# The token's and the rate limits' checks, the ticket, its 'created' event and its triage job (the queue's
# INSERT; its dedupe key names the ticket this statement makes, so it cannot exist yet), with the wake-up: one
# statement, one round trip. The counters are counted even for a refused ticket (fixed windows: they end).
_TICKET_COUNTERS = f"""(SELECT b.bucket, b.key FROM actor, (VALUES
        ('{ThrottleBucket.TICKET_USER}', CAST(:actor_id AS varchar), CAST(:max_per_user AS int)),
        ('{ThrottleBucket.TICKET_ADDRESS}', CAST(:address AS varchar), CAST(:max_per_address AS int))
    ) AS b(bucket, key, cap) WHERE b.cap > 0) AS wanted"""
_CREATE = text(
    f"""
    WITH actor AS (
        SELECT id, name, email FROM users
        WHERE id = :actor_id AND is_active AND token_version = :token_version
          AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = CAST(:jti AS varchar))
    ), counted AS ({throttle.hits_sql(_TICKET_COUNTERS)}), refused AS (
        SELECT max(retry_after) AS retry_after FROM counted
        WHERE hits > CASE bucket WHEN '{ThrottleBucket.TICKET_USER}' THEN CAST(:max_per_user AS int)
                                 ELSE CAST(:max_per_address AS int) END
    ), ticket AS (
        INSERT INTO tickets (title, description, status, created_by_id, required_skills, triage_status)
        SELECT :title, :description, '{TicketStatus.OPEN}', actor.id, '{{}}', '{TriageStatus.PENDING}'
        FROM actor, refused WHERE refused.retry_after IS NULL
        RETURNING id, number, created_at, updated_at
    ), event AS (
        INSERT INTO ticket_events (ticket_id, actor_id, kind, data)
        SELECT ticket.id, :actor_id, '{EventKind.CREATED}',
               CASE WHEN CAST(:via AS varchar) IS NULL THEN '{{}}'::jsonb
                    ELSE jsonb_build_object('via', CAST(:via AS varchar)) END
        FROM ticket
    ), job AS ({
        queue.insert_job_sql(
            kind=f"'{JobKind.TRIAGE}'",
            payload="jsonb_build_object('ticket_id', ticket.id)",
            dedupe_key=f"'{JobKind.TRIAGE}:' || ticket.id",
            run_after="now()",
            source="ticket",
            skip_duplicates=False,
        )
    })
    SELECT ticket.id, ticket.number, ticket.created_at, ticket.updated_at, actor.name AS actor_name,
           actor.email AS actor_email, refused.retry_after,
           CASE WHEN ticket.id IS NOT NULL THEN {queue.notify_unless_due_sql(JobKind.TRIAGE)} END AS woke_workers
    FROM actor CROSS JOIN refused LEFT JOIN ticket ON true
    """
)
_CREATE_PSYCOPG = str(_CREATE.compile(dialect=psycopg_dialect()))  # type: ignore[no-untyped-call]  # psycopg's %(name)s placeholders


def _check_files(files: Sequence[tuple[str, bytes]]) -> None:
    if len(files) > attachments.MAX_FILES_PER_FORM:
        raise InvalidInput(f"Attach at most {attachments.MAX_FILES_PER_FORM} files at once.", field="file")


def create_ticket_with_files(
    session: Session, actor: User, data: TicketCreate, files: Sequence[tuple[str, bytes]], *, address: str | None = None
) -> TicketOut:
    """`create_ticket` and its files (name, bytes) in the caller's transaction: a file refused (empty, too
    large, too many) refuses the ticket too, so nothing is half-saved."""
    _check_files(files)
    created = create_ticket(session, actor, data, address=address)
    if files:
        attachments.count_upload(session, actor, address, len(files))
        ticket = session.get(Ticket, created.id)
        assert ticket is not None  # just inserted in this transaction
        for filename, content in files:
            attachments.store(session, actor, ticket, filename=filename, data=content)
    return created


def get_visible_ticket(session: Session, actor: User, ticket_id: int, *, lock: bool = False) -> Ticket:
    """The ticket if `actor` may see it; NotFound otherwise (never reveal that it exists)."""
    if not 0 < ticket_id <= MAX_ID:  # the database would refuse the comparison itself (integer out of range)
        raise NotFound("Ticket not found.")
    query = select(Ticket).where(Ticket.id == ticket_id)
    if lock:
        query = query.with_for_update(of=Ticket)
    ticket = session.scalar(query)
    if ticket is None or not can_see(actor, ticket):
        raise NotFound("Ticket not found.")
    return ticket


def _in_scope(actor: User, assigned: str) -> ColumnElement[bool]:
    """What `actor` may see, narrowed by the "assigned" filter (me, unassigned or any)."""
    if assigned == "me":
        return visible_tickets_assigned_to(actor)
    if assigned == "unassigned":
        return and_(visible_tickets(actor), Ticket.assigned_to_id.is_(None))
    return visible_tickets(actor)


def list_tickets(session: Session, actor: User, filters: TicketFilters, *, order: str = "newest") -> Page[TicketOut]:
    """Tickets visible to `actor`, filtered; newest first, or queue order (priority, then due time). With `q`,
    the tickets that match it, best first, each with its highlighted title and snippet (services/search.py)."""
    conditions = [_in_scope(actor, filters.assigned)]
    if filters.status:
        conditions.append(Ticket.status == filters.status)
    if filters.active:
        conditions.append(TICKET_IS_ACTIVE)
    if filters.priority:
        conditions.append(Ticket.priority == filters.priority)
    if filters.category:
        conditions.append(Ticket.category == filters.category)
    if filters.needs_review:
        if actor.role not in STAFF_ROLES:  # an internal flag: a requester must not learn it by filtering
            raise PermissionDenied("Only staff can list the tickets that need review.")
        conditions.append(Ticket.needs_review.is_(True))
    if filters.q and filters.q.strip():
        return _search(session, actor, conditions, filters)
    # People are loaded for the page's rows only (selectin): joined to every matching ticket before the sort
    # and limit, they made a large queue sort every matching row at full width.
    query = select(Ticket).where(*conditions).options(selectinload(Ticket.assigned_to), selectinload(Ticket.created_by))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    if order == "queue":
        # Served by the queue indexes (migration 0004) when the active filter is on: no sort of every match.
        query = query.order_by(Ticket.priority_rank, Ticket.due_at.asc().nulls_last(), Ticket.id)
    else:
        query = query.order_by(Ticket.created_at.desc(), Ticket.id.desc())
    tickets = session.scalars(query.limit(filters.limit).offset(filters.offset)).unique().all()
    files, _ = attachments.visible_attachments(session, [t.id for t in tickets])  # one query for the page
    items = [ticket_out(t, actor).model_copy(update={"attachments": files.get(t.id, [])}) for t in tickets]
    return Page[TicketOut](items=items, total=total)


def _search(
    session: Session, actor: User, conditions: list[ColumnElement[bool]], filters: TicketFilters
) -> Page[TicketOut]:
    query = search.parse_query(filters.q or "")
    if query.empty:  # only punctuation: no word to look for
        return Page[TicketOut](items=[], total=0)
    # conditions[0] is what the person may see: search reads it in parts, each through its own index.
    found = search.find(
        session, actor, filters.assigned, conditions[1:], query, limit=filters.limit, offset=filters.offset
    )
    hits = search.hits(session, actor, found.tickets, query)
    files, _ = attachments.visible_attachments(session, [t.id for t, _ in found.tickets])
    items = [
        ticket_out(t, actor).model_copy(update={"search": hits[t.id], "attachments": files.get(t.id, [])})
        for t, _ in found.tickets
    ]
    return Page[TicketOut](items=items, total=found.total)


def list_queue(session: Session, actor: User, filters: TicketFilters) -> Page[TicketOut]:
    """A staff member's work queue in priority and due-time order; admins may look at all or unassigned."""
    if actor.role not in STAFF_ROLES:
        raise PermissionDenied("The queue is for moderators and admins.")
    if actor.role == Role.MODERATOR:
        filters = filters.model_copy(update={"assigned": "me"})
    return list_tickets(session, actor, filters, order="queue")


def get_ticket_detail(session: Session, actor: User, ticket_id: int) -> TicketDetail:
    """One ticket with the conversation and timeline `actor` may see."""
    return _detail(session, actor, get_visible_ticket(session, actor, ticket_id))


@dataclass(frozen=True)
class TicketView:
    """What a ticket page shows: the ticket as `actor` sees it, and what they may do with it."""

    detail: TicketDetail
    can_manage: bool
    staff_view: bool
    assignable: list[UserOut]  # empty unless can_manage
    categories: list[str]


def get_ticket_view(session: Session, actor: User, ticket_id: int) -> TicketView:
    """The ticket page's data in one read: detail, permissions, and the people it may be assigned to."""
    ticket = get_visible_ticket(session, actor, ticket_id)
    manage = can_manage(actor, ticket)
    return TicketView(
        detail=_detail(session, actor, ticket),
        can_manage=manage,
        staff_view=sees_staff_view(actor, ticket),
        assignable=assignable_staff(session, actor) if manage else [],
        categories=list(get_settings().triage_categories),
    )


def _person(person: dict[str, Any] | None, viewer: Any, staff: bool) -> dict[str, Any] | None:
    """Someone named to `viewer`: a requester sees other people by name only, without their e-mail address."""
    if person is None or staff or person["id"] == viewer.id:
        return person
    return {**person, "email": None}


def _detail(session: Session, actor: User, ticket: Ticket) -> TicketDetail:
    staff = sees_staff_view(actor, ticket)
    comment_query = select(Comment).where(Comment.ticket_id == ticket.id)
    if not staff:
        comment_query = comment_query.where(Comment.internal.is_(False))
    comments = session.scalars(comment_query.order_by(Comment.created_at, Comment.id)).all()
    timeline = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    ).all()
    # Files of the comments shown only: an internal note's files stay with the note.
    on_ticket, on_comment = attachments.visible_attachments(session, [ticket.id], [c.id for c in comments])
    event_rows = [EventOut.model_validate(e) for e in timeline]
    comment_rows = [
        CommentOut.model_validate(c).model_copy(update={"attachments": on_comment.get(c.id, [])}) for c in comments
    ]
    if not staff:
        event_rows = [_requester_event(e, actor) for e in event_rows if not e.data.get("internal")]
        comment_rows = [_requester_comment(c, actor) for c in comment_rows]
    base = ticket_out(ticket, actor).model_copy(update={"attachments": on_ticket.get(ticket.id, [])})
    return TicketDetail(**base.model_dump(), comments=comment_rows, events=event_rows)


# What a requester's timeline keeps of each kind of event: that it happened, the values it moved between and
# who works on the ticket, by name. Never why staff did it (reasons, routing's reasoning, fall-backs, AI
# suggestions staff overrode, errors): that is internal, like the assignment reason. Unknown kinds keep nothing.
_REQUESTER_EVENT_FIELDS: dict[str, frozenset[str]] = {
    EventKind.CREATED: frozenset({"via"}),
    EventKind.TRIAGED: frozenset({"category", "priority", "provider"}),
    EventKind.TRIAGE_FAILED: frozenset(),
    EventKind.ASSIGNED: frozenset({"to"}),
    EventKind.REASSIGNED: frozenset({"old", "new"}),
    EventKind.REROUTED: frozenset({"old", "new"}),
    EventKind.UNASSIGNED: frozenset({"old"}),
    EventKind.STATUS_CHANGED: frozenset({"old", "new"}),
    EventKind.PRIORITY_OVERRIDDEN: frozenset({"old", "new"}),
    EventKind.CATEGORY_OVERRIDDEN: frozenset({"old", "new"}),
    EventKind.COMMENTED: frozenset({"comment_id", "internal", "via"}),
    EventKind.ATTACHED: frozenset({"attachment_id", "filename", "comment_id", "internal"}),
    EventKind.MERGED_INTO: frozenset({"into", "comments"}),
    EventKind.MERGED_FROM: frozenset({"from", "comments"}),
    EventKind.FOLLOWER_ADDED: frozenset({"user"}),
}


def _requester_event(event: EventOut, viewer: User) -> EventOut:
    """The event as a requester sees it: what happened and who, by name; their own reason stays theirs."""
    own = event.actor is not None and event.actor.id == viewer.id
    keep = _REQUESTER_EVENT_FIELDS.get(event.kind, frozenset()) | ({"reason"} if own else set())
    data = {key: _name_only(value) for key, value in event.data.items() if key in keep}
    actor = event.actor if own or event.actor is None else event.actor.model_copy(update={"email": None})
    return event.model_copy(update={"data": data, "actor": actor})


def _name_only(value: Any) -> Any:
    """A person stored in an event ({"id", "name", "email"}) without the address; other values as they are."""
    if isinstance(value, dict) and "email" in value:
        return {key: item for key, item in value.items() if key != "email"}
    return value


def _requester_comment(comment: CommentOut, viewer: User) -> CommentOut:
    if comment.author.id == viewer.id:
        return comment
    return comment.model_copy(update={"author": comment.author.model_copy(update={"email": None})})


def update_ticket(session: Session, actor: User, ticket_id: int, data: TicketUpdate) -> Ticket:
    """Change status, priority, category or assignee, each with its permission and an audit event."""
    ticket = get_visible_ticket(session, actor, ticket_id, lock=True)
    changes = data.model_fields_set - {"reason"}
    if not changes:
        raise InvalidInput("Nothing to change: give a status, priority, category or assignee.")
    manager = can_manage(actor, ticket)
    reason = (data.reason or "").strip() or None

    if "status" in changes and data.status is not None and data.status != ticket.status:
        _change_status(session, actor, ticket, data.status, reason, manager=manager)
    staff_fields = changes & {"priority", "category", "assignee_id"}
    if staff_fields and not manager:
        raise PermissionDenied("Only the assigned moderator or an admin can change this ticket.")
    if "priority" in changes and data.priority != ticket.priority:
        if data.priority is None:
            raise InvalidInput("Priority cannot be removed; choose low, medium or high.", field="priority")
        _require_reason(reason, "priority")
        events.record(
            session, ticket, EventKind.PRIORITY_OVERRIDDEN, actor, old=ticket.priority, new=data.priority, reason=reason
        )
        corrections.record(session, actor, ticket, CorrectionField.PRIORITY, ticket.priority, data.priority)
        ticket.priority = data.priority
        sla.set_targets(ticket)
    if "category" in changes and data.category != ticket.category:
        category = (data.category or "").strip().lower()
        if category not in get_settings().triage_categories:
            allowed = ", ".join(get_settings().triage_categories)
            raise InvalidInput(f"Unknown category. Choose one of: {allowed}.", field="category")
        _require_reason(reason, "category")
        events.record(
            session, ticket, EventKind.CATEGORY_OVERRIDDEN, actor, old=ticket.category, new=category, reason=reason
        )
        corrections.record(session, actor, ticket, CorrectionField.CATEGORY, ticket.category, category)
        ticket.category = category
    if changes & {"priority", "category"}:
        ticket.needs_review = False  # staff have looked at the triage's guess
    if "assignee_id" in changes and data.assignee_id != ticket.assigned_to_id:
        _reassign(session, actor, ticket, data.assignee_id, reason)
    session.flush()
    session.refresh(ticket)
    return ticket


def _require_reason(reason: str | None, what: str) -> None:
    if not reason:
        raise InvalidInput(f"Say why you override the {what} (reason).", field="reason")


def _change_status(
    session: Session, actor: User, ticket: Ticket, new: str, reason: str | None, *, manager: bool
) -> None:
    if not manager and ticket.created_by_id != actor.id:  # a follower replies, but the requester decides
        raise PermissionDenied("Only the requester, the assigned moderator or an admin can change this ticket.")
    allowed = TRANSITIONS if manager else REQUESTER_TRANSITIONS
    if new not in allowed.get(ticket.status, set()):
        if not manager and ticket.created_by_id == actor.id:
            raise PermissionDenied("You can reopen or close your ticket once it is resolved.")
        if not manager:
            raise PermissionDenied("Only the assigned moderator or an admin can change this ticket.")
        raise InvalidInput(f"A ticket cannot go from {ticket.status} to {new}.", field="status")
    events.record(session, ticket, EventKind.STATUS_CHANGED, actor, old=ticket.status, new=new, reason=reason)
    old = ticket.status
    ticket.status = new
    sla.on_status_change(ticket, new)
    if new == TicketStatus.RESOLVED:
        ticket.resolved_at = datetime.now(UTC)
    elif new == TicketStatus.OPEN and old in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        ticket.resolved_at = None
    notifications.status_changed(session, actor, ticket, old, new)


def _reassign(session: Session, actor: User, ticket: Ticket, assignee_id: int | None, reason: str | None) -> None:
    if assignee_id is None:
        if actor.role != Role.ADMIN:
            raise PermissionDenied("Only an admin can unassign a ticket.")
        events.record(
            session, ticket, EventKind.UNASSIGNED, actor, old=events.user_brief(ticket.assigned_to), reason=reason
        )
        ticket.assigned_to_id = None
        ticket.assignment_reason = f"unassigned by {actor.name}" + (f": {reason}" if reason else "")
        return
    assignee = session.get(User, assignee_id)
    if assignee is None or not assignee.is_active or assignee.role not in STAFF_ROLES:
        raise InvalidInput("Tickets can only be assigned to an active moderator or admin.", field="assignee_id")
    events.record(
        session,
        ticket,
        EventKind.REASSIGNED,
        actor,
        old=events.user_brief(ticket.assigned_to),
        new=events.user_brief(assignee),
        reason=reason,
    )
    old = str(ticket.assigned_to_id) if ticket.assigned_to_id is not None else None
    corrections.record(
        session, actor, ticket, CorrectionField.ASSIGNEE, old, str(assignee.id), list(assignee.skills or [])
    )
    ticket.assigned_to_id = assignee.id
    ticket.assigned_to = assignee
    ticket.assigned_at = datetime.now(UTC)
    ticket.assignment_reason = f"reassigned by {actor.name}" + (f": {reason}" if reason else "")
    if assignee.id != actor.id:  # nobody is mailed about their own action
        notifications.assignment(session, ticket, assignee, reassigned=True)


def add_comment(
    session: Session,
    actor: User,
    ticket_id: int,
    data: CommentCreate,
    *,
    address: str | None = None,
    via: CommentVia = CommentVia.WEB,
    notify: bool = True,
    files: Sequence[tuple[str, bytes]] = (),
) -> Comment:
    """A public reply (anyone who sees the ticket) or an internal note (staff working it), with its files
    (name, bytes) if any, all in the caller's transaction.

    At most COMMENTS_MAX_PER_USER and COMMENTS_MAX_PER_ADDRESS per RATE_WINDOW_SECONDS (TooManyAttempts); files
    count against the upload limits too. The other side is mailed in the same transaction, after the files are
    stored so that the mail lists them (notifications.comment_added); `notify=False` leaves that to the caller.
    """
    _check_files(files)
    settings = get_settings()
    for bucket, key, limit in (
        (ThrottleBucket.COMMENT_USER, str(actor.id), settings.comments_max_per_user),
        (ThrottleBucket.COMMENT_ADDRESS, address, settings.comments_max_per_address),
    ):
        throttle.hit(
            session,
            bucket,
            key,
            limit=limit,
            window_seconds=settings.rate_window_seconds,
            message="You are commenting too quickly.",
        )
    ticket = get_visible_ticket(session, actor, ticket_id, lock=True)  # locked: the reply may move its SLA
    if ticket.merged_into is not None:  # closed for good: its conversation goes on in the original
        raise Conflict(f"This ticket was merged into {ticket.merged_into.reference}: reply there.")
    if data.internal and not sees_staff_view(actor, ticket):
        raise PermissionDenied("Only staff working on this ticket can add internal notes.")
    if data.last_seen_comment_id is not None:
        _refuse_if_stale(session, actor, ticket, data.last_seen_comment_id)
    comment = Comment(ticket_id=ticket.id, author_id=actor.id, body=data.body, internal=data.internal, via=via)
    session.add(comment)
    session.flush()
    extra = {"via": str(via)} if via != CommentVia.WEB else {}  # e-mail and API replies say how they came
    events.record(session, ticket, EventKind.COMMENTED, actor, comment_id=comment.id, internal=data.internal, **extra)
    if files:
        attachments.count_upload(session, actor, address, len(files))
        for filename, content in files:
            attachments.store(session, actor, ticket, filename=filename, data=content, comment=comment)
    if not data.internal:
        _public_reply_moves_sla(session, actor, ticket)
    ticket.updated_at = datetime.now(UTC)
    session.flush()
    session.refresh(comment)
    if notify:
        notifications.comment_added(session, actor, ticket, comment)
    return comment


STALE_REPLY = "A new reply arrived since you opened this ticket. Read it, then send yours again."


def newest_comment_id(session: Session, actor: User, ticket: Ticket) -> int:
    """The newest comment on `ticket` that `actor` can see (0: none)."""
    query = select(func.max(Comment.id)).where(Comment.ticket_id == ticket.id)
    if not sees_staff_view(actor, ticket):
        query = query.where(Comment.internal.is_(False))
    return session.scalar(query) or 0


def _refuse_if_stale(session: Session, actor: User, ticket: Ticket, last_seen: int) -> None:
    """Conflict when someone else commented (where `actor` can see it) after the comment they last saw."""
    newer = select(Comment.id).where(
        Comment.ticket_id == ticket.id, Comment.id > last_seen, Comment.author_id != actor.id
    )
    if not sees_staff_view(actor, ticket):
        newer = newer.where(Comment.internal.is_(False))
    if session.scalar(newer.limit(1)) is not None:
        raise Conflict(STALE_REPLY)


def _public_reply_moves_sla(session: Session, actor: User, ticket: Ticket) -> None:
    """The requester's reply on a pending ticket puts it back in progress (the SLA clock runs again); the first
    public reply by staff working the ticket is its first response. A follower's reply counts as the requester's."""
    if is_requester_side(actor, ticket):
        if ticket.status == TicketStatus.PENDING:
            new = TicketStatus.IN_PROGRESS
            events.record(
                session, ticket, EventKind.STATUS_CHANGED, actor, old=ticket.status, new=new, reason="requester replied"
            )
            ticket.status = new
            sla.on_status_change(ticket, new)
    elif sees_staff_view(actor, ticket) and ticket.first_responded_at is None:
        ticket.first_responded_at = datetime.now(UTC)


def change_marker(
    session: Session, actor: User, filters: TicketFilters | None = None, ticket_id: int | None = None
) -> str:
    """A cheap fingerprint of what `actor` sees (one ticket, or a filtered list): it changes when any of it does.

    Live pages poll this and reload only when it moves.
    """
    everything = filters is None or filters.assigned == "any"
    if actor.role == Role.ADMIN and ticket_id is None and everything:
        # Every ticket: tickets are never deleted, a new one raises max(id) and every change bumps updated_at,
        # so a count adds nothing, and without it both maxima are single index lookups (a count scans every
        # ticket, every second, for every open admin page).
        latest, top = session.execute(
            select(select(func.max(Ticket.updated_at)).scalar_subquery(), select(func.max(Ticket.id)).scalar_subquery())
        ).one()
        return f"all:{latest.isoformat() if latest else ''}:{top}"
    scope = _in_scope(actor, filters.assigned if filters is not None else "any")
    query = select(func.count(), func.max(Ticket.updated_at), func.max(Ticket.id)).where(scope)
    if ticket_id is not None:
        query = query.where(Ticket.id == ticket_id)
    count, latest, top = session.execute(query).one()
    comments = 0
    if ticket_id is not None:
        comments = session.scalar(select(func.count()).where(TicketEvent.ticket_id == ticket_id)) or 0
    return f"{count}:{latest.isoformat() if latest else ''}:{top}:{comments}"
