"""Turn service results into the typed, display-ready rows the pages render (all text stays text).

Rows are frozen dataclasses: Reflex 0.10 sends them as objects, and pages read their fields as attributes
of the var (`row.title`, `rx.foreach(State.rows, ...)` over `list[TicketRow]`). A changed row is a new row
(`dataclasses.replace`), so a change always reaches the browser.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from ticketing_app.domain import ACTIVE_STATUSES, EventKind, label
from ticketing_app.schemas import CommentOut, EventOut, TicketOut, UserOut


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclasses.dataclass(frozen=True)
class Piece:
    """A piece of a search result's text; `match`: it matched (shown marked, as text)."""

    text: str
    match: bool


@dataclasses.dataclass(frozen=True)
class TicketRow:
    """One ticket as the lists and the ticket page show it; the blank row (id 0) stands for "no ticket"."""

    id: int = 0
    number: str = ""
    title: str = ""
    description: str = ""
    status: str = ""
    status_label: str = ""
    priority: str = ""
    priority_label: str = ""
    category_label: str = ""
    skills: str = ""
    summary: str = ""
    helpful_notes: str = ""
    triage_status: str = ""
    triage_provider: str = ""
    confidence: str = ""
    assignee: str = ""
    assignee_id: int = 0
    assignment_reason: str = ""
    requester: str = ""
    requester_id: int = 0
    created: str = ""
    updated: str = ""
    due: str = ""
    overdue: bool = False
    # In search results: the title and a snippet, cut into pieces with the matches marked.
    searched: bool = False
    title_pieces: list[Piece] = dataclasses.field(default_factory=list)
    snippet_pieces: list[Piece] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class CommentRow:
    id: int
    author: str
    body: str
    internal: bool
    created: str


@dataclasses.dataclass(frozen=True)
class EventRow:
    """One line of a ticket's timeline."""

    id: int
    who: str
    what: str
    detail: str
    created: str


@dataclasses.dataclass(frozen=True)
class StaffOption:
    """A person a ticket can be reassigned to (the id as text: it is an <option> value)."""

    id: str
    label: str


def ticket_row(t: TicketOut) -> TicketRow:
    overdue = bool(t.due_at and t.status in ACTIVE_STATUSES and t.due_at < datetime.now(UTC))
    return TicketRow(
        id=t.id,
        number=t.number,
        title=t.title,
        description=t.description,
        status=t.status,
        status_label=label(t.status),
        priority=t.priority or "",
        priority_label=label(t.priority, "Triaging…"),
        category_label=label(t.category, "—"),
        skills=", ".join(t.required_skills) or "—",
        summary=t.summary or "",
        helpful_notes=t.helpful_notes or "",
        triage_status=t.triage_status,
        triage_provider=t.triage_provider or "",
        confidence="" if t.triage_confidence is None else f"{t.triage_confidence:.0%}",
        assignee=t.assigned_to.name if t.assigned_to else "Unassigned",
        assignee_id=t.assigned_to.id if t.assigned_to else 0,
        assignment_reason=t.assignment_reason or "",
        requester=t.created_by.name,
        requester_id=t.created_by.id,
        created=when(t.created_at),
        updated=when(t.updated_at),
        due=when(t.due_at),
        overdue=overdue,
        searched=t.search is not None,
        title_pieces=[Piece(p.text, p.match) for p in t.search.title] if t.search else [],
        snippet_pieces=[Piece(p.text, p.match) for p in t.search.snippet] if t.search else [],
    )


def comment_row(c: CommentOut) -> CommentRow:
    return CommentRow(id=c.id, author=c.author.name, body=c.body, internal=c.internal, created=when(c.created_at))


def staff_option(u: UserOut) -> StaffOption:
    return StaffOption(id=str(u.id), label=f"{u.name} ({u.role}, {u.open_tickets} open)")


_EVENT_TEXT: dict[str, str] = {
    EventKind.CREATED: "submitted the ticket",
    EventKind.TRIAGED: "AI triage",
    EventKind.TRIAGE_FAILED: "AI triage failed; routed without it",
    EventKind.ASSIGNED: "routed",
    EventKind.REASSIGNED: "reassigned",
    EventKind.REROUTED: "re-routed",
    EventKind.UNASSIGNED: "unassigned",
    EventKind.STATUS_CHANGED: "changed status",
    EventKind.PRIORITY_OVERRIDDEN: "overrode priority",
    EventKind.CATEGORY_OVERRIDDEN: "overrode category",
    EventKind.COMMENTED: "commented",
}


def event_row(e: EventOut) -> EventRow:
    d = e.data or {}
    detail = ""
    if e.kind in (EventKind.STATUS_CHANGED, EventKind.PRIORITY_OVERRIDDEN, EventKind.CATEGORY_OVERRIDDEN):
        detail = f"{label(d.get('old'))} → {label(d.get('new'))}"
    elif e.kind == EventKind.TRIAGED:
        detail = f"{label(d.get('category'))}, {label(d.get('priority'))} priority, by {d.get('provider')}"
    elif e.kind in (EventKind.ASSIGNED, EventKind.REASSIGNED, EventKind.REROUTED):
        target = d.get("to") or d.get("new") or {}
        detail = f"to {target.get('name', 'nobody')}"
    if d.get("reason"):
        detail = f"{detail} — {d['reason']}" if detail else str(d["reason"])
    return EventRow(
        id=e.id,
        who=e.actor.name if e.actor else "System",
        what=_EVENT_TEXT.get(e.kind, e.kind),
        detail=detail,
        created=when(e.created_at),
    )


# ----- the admin pages -----


@dataclasses.dataclass(frozen=True)
class UserRow:
    """One person on /admin/users, with the row's own edit state (unsaved skills, its message)."""

    id: int
    name: str
    email: str
    role: str
    active: bool
    skills: list[str]
    draft: list[str]  # the skills as edited, not saved yet
    dirty: bool
    load: str  # open tickets, for staff
    is_self: bool
    verified: bool = True
    error: str = ""
    notice: str = ""


@dataclasses.dataclass(frozen=True)
class SeriesRow:
    """One bar or slice of a chart: `fill` is a CSS colour such as "var(--blue-9)"."""

    key: str
    name: str
    value: int
    fill: str


@dataclasses.dataclass(frozen=True)
class DayCount:
    day: str  # "MM-DD"
    tickets: int


@dataclasses.dataclass(frozen=True)
class JobCounts:
    queued: int = 0
    running: int = 0
    done: int = 0
    dead: int = 0


@dataclasses.dataclass(frozen=True)
class DeadJobRow:
    id: int
    kind: str
    attempts: int
    error: str  # shortened to one line
    error_full: str
    finished: str


@dataclasses.dataclass(frozen=True)
class EmailRow:
    id: int
    recipient: str  # not `to`: that is a method of every Reflex var
    subject: str
    kind: str
    status: str
    attempts: int
    created: str
    error: str  # shortened to one line
    error_full: str
