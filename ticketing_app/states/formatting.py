"""Turn service results into the typed, display-ready rows the pages render (all text stays text).

Rows are frozen dataclasses: Reflex 0.10 sends them as objects, and pages read their fields as attributes
of the var (`row.title`, `rx.foreach(State.rows, ...)` over `list[TicketRow]`). A changed row is a new row
(`dataclasses.replace`), so a change always reaches the browser.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from ticketing_app.domain import ACTIVE_STATUSES, CLOCK_RUNNING_STATUSES, EventKind, TicketStatus, label
from ticketing_app.schemas import AttachmentOut, CommentOut, EventOut, SimilarTicketOut, TicketOut, UserOut
from ticketing_app.services import sla


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
    needs_review: bool = False
    assignee: str = ""
    assignee_id: int = 0
    assignment_reason: str = ""
    requester: str = ""
    requester_id: int = 0
    created: str = ""
    updated: str = ""
    due: str = ""
    overdue: bool = False
    rating: str = ""  # the requester's "good" or "bad", "" before any
    rating_comment: str = ""
    # SLA clocks in business time: "3h 20m left", "overdue 1h", "paused", "met", "missed" ("" without a target).
    first_response_due: str = ""
    first_response_left: str = ""
    first_response_late: bool = False
    resolution_left: str = ""
    resolution_late: bool = False
    # In search results: the title and a snippet, cut into pieces with the matches marked.
    searched: bool = False
    title_pieces: list[Piece] = dataclasses.field(default_factory=list)
    snippet_pieces: list[Piece] = dataclasses.field(default_factory=list)
    # Merging: the original this duplicate went into (0 / "" when not merged).
    merged_into_id: int = 0
    merged_into_number: str = ""


@dataclasses.dataclass(frozen=True)
class SatisfactionRow:
    """Ratings of one moderator or category on the admin overview."""

    group: str = ""  # "Moderator" or "Category"
    name: str = ""
    good: int = 0
    bad: int = 0
    share: str = "—"


def satisfaction_rows(overview: dict[str, Any]) -> list[SatisfactionRow]:
    def share(value: float | None) -> str:
        return "—" if value is None else f"{value:.0%}"

    return [
        SatisfactionRow("Moderator", m["name"], m["good"], m["bad"], share(m["share_good"]))
        for m in overview["by_moderator"]
    ] + [
        SatisfactionRow("Category", label(c["category"]), c["good"], c["bad"], share(c["share_good"]))
        for c in overview["by_category"]
    ]


@dataclasses.dataclass(frozen=True)
class AttachmentRow:
    """A file on a ticket or a comment; `preview` is a data: URL of a small PNG, JPEG, GIF or WebP, else ""."""

    id: int
    anchor: str  # the element id mails link to: {ticket_url}#attachment-{id}
    filename: str
    size: str
    content_type: str
    preview: str = ""


@dataclasses.dataclass(frozen=True)
class CommentRow:
    id: int
    author: str
    body: str
    internal: bool
    created: str
    attachments: list[AttachmentRow] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class EventRow:
    """One line of a ticket's timeline."""

    id: int
    who: str
    what: str
    detail: str
    created: str
    # A ticket the line names (merges): its page, and its number as the link's text ("" none).
    link: str = ""
    link_label: str = ""


@dataclasses.dataclass(frozen=True)
class StaffOption:
    """A person a ticket can be reassigned to (the id as text: it is an <option> value)."""

    id: str
    label: str


@dataclasses.dataclass(frozen=True)
class ViewerRow:
    """Another staff member on the ticket page."""

    name: str = ""
    typing: bool = False


@dataclasses.dataclass(frozen=True)
class CannedOption:
    """A canned reply in the ticket page's picker (the id as text: it is an <option> value)."""

    id: str
    label: str


@dataclasses.dataclass(frozen=True)
class SimilarRow:
    """An earlier similar ticket in the ticket page's panel (shown as text: React escapes it)."""

    id: int = 0
    number: str = ""
    title: str = ""
    href: str = ""
    status_label: str = ""
    similarity: str = ""  # "87% similar"
    resolution: str = ""


def similar_row(item: SimilarTicketOut) -> SimilarRow:
    return SimilarRow(
        id=item.id,
        number=item.number,
        title=item.title,
        href=f"/tickets/{item.id}",
        status_label=label(item.status),
        similarity=f"{round(item.similarity * 100)}% similar",
        resolution=item.resolution or "",
    )


def ticket_row(t: TicketOut) -> TicketRow:
    now = datetime.now(UTC)
    overdue = bool(t.due_at and t.status in CLOCK_RUNNING_STATUSES and t.due_at < now)
    first_late = bool(t.sla and t.sla.first_response.breached)
    resolution_late = bool(t.sla and t.sla.resolution.breached)
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
        needs_review=t.needs_review,
        assignee=t.assigned_to.name if t.assigned_to else "Unassigned",
        assignee_id=t.assigned_to.id if t.assigned_to else 0,
        assignment_reason=t.assignment_reason or "",
        requester=t.created_by.name,
        requester_id=t.created_by.id,
        created=when(t.created_at),
        updated=when(t.updated_at),
        due=when(t.due_at),
        overdue=overdue,
        rating=t.satisfaction.rating if t.satisfaction else "",
        rating_comment=(t.satisfaction.comment or "") if t.satisfaction else "",
        merged_into_id=t.merged_into.id if t.merged_into else 0,
        merged_into_number=t.merged_into.number if t.merged_into else "",
        first_response_due=when(t.first_response_due_at),
        first_response_left=sla.clock_text(
            t.first_response_due_at,
            breached=first_late,
            stopped=t.first_responded_at is not None or t.status not in ACTIVE_STATUSES,
            paused=False,
            now=now,
        ),
        first_response_late=first_late,
        resolution_left=sla.clock_text(
            t.due_at,
            breached=resolution_late,
            stopped=t.status not in ACTIVE_STATUSES,
            paused=t.status == TicketStatus.PENDING,
            now=now,
        ),
        resolution_late=resolution_late,
        searched=t.search is not None,
        title_pieces=[Piece(p.text, p.match) for p in t.search.title] if t.search else [],
        snippet_pieces=[Piece(p.text, p.match) for p in t.search.snippet] if t.search else [],
    )


def file_size(size: int) -> str:
    """1536 -> "1.5 KB" (powers of 1024, as file managers show them)."""
    value, unit = float(size), "bytes"
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


def attachment_row(a: AttachmentOut, previews: dict[int, str] | None = None) -> AttachmentRow:
    return AttachmentRow(
        id=a.id,
        anchor=f"attachment-{a.id}",
        filename=a.filename,
        size=file_size(a.size),
        content_type=a.content_type,
        preview=(previews or {}).get(a.id, ""),
    )


def comment_row(c: CommentOut, previews: dict[int, str] | None = None) -> CommentRow:
    return CommentRow(
        id=c.id,
        author=c.author.name,
        body=c.body,
        internal=c.internal,
        created=when(c.created_at),
        attachments=[attachment_row(a, previews) for a in c.attachments],
    )


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
    EventKind.ATTACHED: "attached a file",
    EventKind.MERGED_INTO: "merged this ticket into",
    EventKind.MERGED_FROM: "merged in",
    EventKind.FOLLOWER_ADDED: "added a follower",
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
    elif e.kind in (EventKind.CREATED, EventKind.COMMENTED) and d.get("via") == "email":
        detail = "by e-mail"
    elif e.kind == EventKind.ATTACHED:
        detail = str(d.get("filename") or "")
    elif e.kind == EventKind.FOLLOWER_ADDED:
        detail = str((d.get("user") or {}).get("name") or "")
    link, link_label = _merge_link(e)
    if d.get("reason"):
        detail = f"{detail} — {d['reason']}" if detail else str(d["reason"])
    return EventRow(
        id=e.id,
        who=e.actor.name if e.actor else "System",
        what=_EVENT_TEXT.get(e.kind, e.kind),
        detail=detail,
        created=when(e.created_at),
        link=link,
        link_label=link_label,
    )


def _merge_link(e: EventOut) -> tuple[str, str]:
    """The other ticket of a merge line: ("/tickets/12", "TCK-1042"), or ("", "")."""
    other = (e.data or {}).get("into" if e.kind == EventKind.MERGED_INTO else "from")
    if e.kind not in (EventKind.MERGED_INTO, EventKind.MERGED_FROM) or not isinstance(other, dict):
        return "", ""
    ticket_id, number = other.get("id"), other.get("number")
    if not isinstance(ticket_id, int) or not isinstance(number, str):
        return "", ""
    return f"/tickets/{ticket_id}", number


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
class AcceptanceRow:
    """The AI acceptance rate of one category (or "All"): shares of AI-set fields staff left unchanged."""

    category: str = ""
    closed: int = 0
    category_kept: str = "—"
    priority_kept: str = "—"
    assignee_kept: str = "—"


def acceptance_rows(data: dict[str, Any] | None) -> list[AcceptanceRow]:
    """Rows for the overview: all closed tickets first, then per category."""
    if not data or not data.get("closed"):
        return []

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.0%}"

    def row(name: str, closed: int, rates: dict[str, Any]) -> AcceptanceRow:
        return AcceptanceRow(name, closed, pct(rates["category"]), pct(rates["priority"]), pct(rates["assignee"]))

    rows = [row("All", int(data["closed"]), data["overall"])]
    rows += [row(label(r["category"]), int(r["closed"]), r["kept"]) for r in data["per_category"]]
    return rows


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


@dataclasses.dataclass(frozen=True)
class SlaAttainmentRow:
    """One priority's SLA attainment on the overview: "92% (23 of 25)", or "—" before any target is decided."""

    priority: str
    priority_label: str
    first_response: str
    resolution: str
    first_response_target: str = ""  # "1h" (business hours)
    resolution_target: str = ""


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:g}h"


def sla_attainment_row(entry: dict[str, Any], targets: dict[str, Any] | None = None) -> SlaAttainmentRow:
    def share(counts: dict[str, Any]) -> str:
        decided = counts["met"] + counts["missed"]
        return f"{counts['rate']:.0%} ({counts['met']} of {decided})" if decided else "—"

    return SlaAttainmentRow(
        priority=entry["priority"],
        priority_label=label(entry["priority"]),
        first_response=share(entry["first_response"]),
        resolution=share(entry["resolution"]),
        first_response_target=_hours((targets or {}).get("first_response")),
        resolution_target=_hours((targets or {}).get("resolution")),
    )


def business_hours_text(policy: dict[str, Any]) -> str:
    """ "mon-fri 09:00-17:00 (Europe/Berlin); closed 2026-12-25, 2026-12-26"."""
    text = f"{policy['business_hours']} ({policy['timezone']})"
    return f"{text}; closed {', '.join(policy['holidays'])}" if policy["holidays"] else text
