"""Turn service results into the flat, display-ready rows the pages render (all text stays text)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ticketing_app.schemas import CommentOut, EventOut, TicketOut

LABELS = {
    "open": "Open", "in_progress": "In progress", "resolved": "Resolved", "closed": "Closed",
    "low": "Low", "medium": "Medium", "high": "High",
}


def label(value: str | None, empty: str = "—") -> str:
    if not value:
        return empty
    return LABELS.get(value, value.replace("_", " ").capitalize())


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ticket_row(t: TicketOut) -> dict[str, Any]:
    overdue = bool(t.due_at and t.status in ("open", "in_progress") and t.due_at < datetime.now(UTC))
    return {
        "id": t.id,
        "number": t.number,
        "title": t.title,
        "description": t.description,
        "status": t.status,
        "status_label": label(t.status),
        "priority": t.priority or "",
        "priority_label": label(t.priority, "Triaging…"),
        "category_label": label(t.category, "—"),
        "skills": ", ".join(t.required_skills) or "—",
        "summary": t.summary or "",
        "helpful_notes": t.helpful_notes or "",
        "triage_status": t.triage_status,
        "triage_provider": t.triage_provider or "",
        "confidence": "" if t.triage_confidence is None else f"{t.triage_confidence:.0%}",
        "assignee": t.assigned_to.name if t.assigned_to else "Unassigned",
        "assignee_id": t.assigned_to.id if t.assigned_to else 0,
        "assignment_reason": t.assignment_reason or "",
        "requester": t.created_by.name,
        "requester_id": t.created_by.id,
        "created": when(t.created_at),
        "updated": when(t.updated_at),
        "due": when(t.due_at),
        "overdue": overdue,
    }


def comment_row(c: CommentOut) -> dict[str, Any]:
    return {"id": c.id, "author": c.author.name, "body": c.body, "internal": c.internal, "created": when(c.created_at)}


_EVENT_TEXT = {
    "created": "submitted the ticket",
    "triaged": "AI triage",
    "triage_failed": "AI triage failed; routed without it",
    "assigned": "routed",
    "reassigned": "reassigned",
    "unassigned": "unassigned",
    "status_changed": "changed status",
    "priority_overridden": "overrode priority",
    "category_overridden": "overrode category",
    "commented": "commented",
}


def event_row(e: EventOut) -> dict[str, Any]:
    d = e.data or {}
    detail = ""
    if e.kind in ("status_changed", "priority_overridden", "category_overridden"):
        detail = f"{label(d.get('old'))} → {label(d.get('new'))}"
    elif e.kind == "triaged":
        detail = f"{label(d.get('category'))}, {label(d.get('priority'))} priority, by {d.get('provider')}"
    elif e.kind in ("assigned", "reassigned"):
        target = d.get("to") or d.get("new") or {}
        detail = f"to {target.get('name', 'nobody')}"
    if d.get("reason"):
        detail = f"{detail} — {d['reason']}" if detail else str(d["reason"])
    return {
        "id": e.id,
        "who": e.actor.name if e.actor else "System",
        "what": _EVENT_TEXT.get(e.kind, e.kind),
        "detail": detail,
        "created": when(e.created_at),
    }
