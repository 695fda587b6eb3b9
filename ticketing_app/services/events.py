"""The audit timeline of a ticket."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ticketing_app.models import Ticket, TicketEvent, User


def user_brief(user: User | None) -> dict[str, Any] | None:
    return None if user is None else {"id": user.id, "name": user.name, "email": user.email}


def record(session: Session, ticket: Ticket, kind: str, actor: User | None = None, **data: Any) -> TicketEvent:
    """Append one event; `actor` None means the system (AI triage, routing)."""
    event = TicketEvent(ticket_id=ticket.id, actor_id=actor.id if actor else None, kind=kind, data=data)
    session.add(event)
    return event
