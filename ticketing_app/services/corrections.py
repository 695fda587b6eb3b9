"""Staff corrections of the AI's triage, kept as labelled examples the offline triage learns from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ticketing_app.domain import CorrectionField, TriageStatus
from ticketing_app.models import Ticket, TriageCorrection, User

MAX_LOADED = 5000  # the most recent corrections a worker keeps in memory


@dataclass(frozen=True)
class Example:
    """A correction with the corrected ticket's text."""

    id: int
    title: str
    description: str
    field: str
    value: str
    skills: tuple[str, ...]


def record(
    session: Session,
    actor: User,
    ticket: Ticket,
    field: CorrectionField,
    old: str | None,
    new: str,
    skills: list[str] | None = None,
) -> None:
    """Keep a staff change of a triaged ticket as an example (in the caller's transaction)."""
    if ticket.triage_status != TriageStatus.DONE:
        return  # nothing of the AI's to correct yet (a late triage keeps staff's values anyway)
    session.add(
        TriageCorrection(
            ticket_id=ticket.id,
            field=field,
            ai_value=old,
            staff_value=new,
            skills=list(skills or []),
            created_by_id=actor.id,
        )
    )


def load_since(session: Session, after_id: int, limit: int = MAX_LOADED) -> list[Example]:
    """Corrections with an id above `after_id`, oldest first (on a first load: the latest `limit`)."""
    query = (
        select(TriageCorrection, Ticket.title, Ticket.description)
        .join(Ticket, Ticket.id == TriageCorrection.ticket_id)
        .where(TriageCorrection.id > after_id)
        .order_by(TriageCorrection.id.desc())
        .limit(limit)
    )
    rows = session.execute(query).all()
    return [
        Example(c.id, title, description, c.field, c.staff_value, tuple(c.skills or ()))
        for c, title, description in reversed(rows)
    ]
