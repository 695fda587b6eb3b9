"""Collision detection: which other staff have a ticket open, and who is typing a reply.

Each open ticket page of a staff member working the ticket reports in when it opens, at the first key press
of a reply, and every REPORT_SECONDS (the live loop of states/live.py); the others' pages read it at the same
pace, so they show it within about a second (the issue asks for 2 s). Someone not seen for VIEWER_TTL_SECONDS
has left. Rows are upserted, never accumulated: retention (jobs/retention.py) removes those of pages closed
long ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ticketing_app.models import Ticket, TicketViewer, User
from ticketing_app.services.visibility import sees_staff_view

__all__ = ["REPORT_SECONDS", "TYPING_SECONDS", "VIEWER_TTL_SECONDS", "Viewer", "heartbeat"]

REPORT_SECONDS = 0.5  # how often a staff ticket page reports in and reads the others (states/tickets.py)
VIEWER_TTL_SECONDS = 4  # eight missed reports and the person has left
TYPING_SECONDS = 3  # a key press counts as typing for this long


@dataclass(frozen=True, slots=True)
class Viewer:
    """Another staff member on the same ticket."""

    user_id: int
    name: str
    typing: bool


def heartbeat(session: Session, actor: User, ticket: Ticket, *, typing: bool = False) -> list[Viewer]:
    """Record that `actor` has `ticket` open (typing or not); the other staff who have it open.

    Only staff working the ticket take part: a requester is never shown, and never sees, who is on it.
    """
    if not sees_staff_view(actor, ticket):
        return []
    now = func.clock_timestamp()
    typing_until = now + timedelta(seconds=TYPING_SECONDS) if typing else None
    upsert = insert(TicketViewer).values(ticket_id=ticket.id, user_id=actor.id, seen_at=now, typing_until=typing_until)
    # Typing stays on until it runs out: a report without typing does not cut short the last key press's.
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=[TicketViewer.ticket_id, TicketViewer.user_id],
            set_={
                "seen_at": upsert.excluded.seen_at,
                "typing_until": func.greatest(TicketViewer.typing_until, upsert.excluded.typing_until),
            },
        )
    )
    rows = session.execute(
        select(User.id, User.name, (TicketViewer.typing_until > now).label("typing"))
        .join(User, User.id == TicketViewer.user_id)
        .where(
            TicketViewer.ticket_id == ticket.id,
            TicketViewer.user_id != actor.id,
            TicketViewer.seen_at > now - timedelta(seconds=VIEWER_TTL_SECONDS),
            User.is_active,
        )
        .order_by(User.name, User.id)
    ).all()
    return [Viewer(user_id=r.id, name=r.name, typing=bool(r.typing)) for r in rows]
