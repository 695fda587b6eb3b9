"""Satisfaction: the requester rates a resolved ticket good or bad, from the mail (signed link, no log-in) or
on the ticket page; the overview shows the share of good ratings per moderator and category."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ticketing_app.domain import EventKind, Rating, TicketStatus
from ticketing_app.errors import InvalidInput, InvalidLink, PermissionDenied
from ticketing_app.mail import tokens
from ticketing_app.models import SatisfactionRating, Ticket, User
from ticketing_app.services import events, notifications
from ticketing_app.services.accounts import require_admin
from ticketing_app.services.tickets import get_visible_ticket

__all__ = ["RATE_PATH", "RatingPage", "rate", "rate_by_token", "rating_page", "satisfaction_overview"]

RATE_PATH = notifications.RATE_PATH
MAX_COMMENT_CHARS = 2000
RATABLE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)
BAD_LINK = "This rating link is not valid. Open the ticket from the e-mail to rate it there."


@dataclass(frozen=True)
class RatingPage:
    """What the rating page shows: which ticket, and the rating already given (if any)."""

    reference: str
    title: str
    rating: str | None
    comment: str


def _from_token(session: Session, token: str) -> tuple[Ticket, User]:
    target = tokens.read_rating_token(token)
    ticket = session.get(Ticket, target.ticket_id) if target else None
    if target is None or ticket is None or ticket.created_by_id != target.user_id or not ticket.created_by.is_active:
        raise InvalidLink(BAD_LINK)
    return ticket, ticket.created_by


def rating_page(session: Session, token: str) -> RatingPage:
    """The page behind the mail's link. Reading it records nothing: mail scanners open links."""
    ticket, _ = _from_token(session, token)
    current = ticket.satisfaction
    return RatingPage(
        reference=ticket.reference,
        title=ticket.title,
        rating=current.rating if current else None,
        comment=(current.comment or "") if current else "",
    )


def _record(session: Session, ticket: Ticket, requester: User, rating: str, comment: str | None) -> SatisfactionRating:
    if rating not in tuple(Rating):
        raise InvalidInput("Choose good or bad.", field="rating")
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInput(f"Keep the comment under {MAX_COMMENT_CHARS} characters.", field="comment")
    if ticket.status not in RATABLE:
        raise InvalidInput("This ticket is open again: you can rate it once it is resolved.")
    values = {
        "rating": rating,
        "comment": comment,
        "rated_by_id": requester.id,
        "assignee_id": ticket.assigned_to_id,
        "category": ticket.category,
        "rated_at": func.now(),
    }
    upsert = insert(SatisfactionRating).values(ticket_id=ticket.id, **values)
    session.execute(upsert.on_conflict_do_update(index_elements=[SatisfactionRating.ticket_id], set_=values))
    events.record(session, ticket, EventKind.RATED, requester, rating=rating)
    session.flush()
    saved = session.get(SatisfactionRating, ticket.id, populate_existing=True)
    assert saved is not None  # just written in this transaction
    return saved


def rate_by_token(session: Session, token: str, rating: str, comment: str | None) -> SatisfactionRating:
    """Record the rating sent from the mail's page (a POST: the click of a person, not a scanner's fetch)."""
    ticket, requester = _from_token(session, token)
    return _record(session, ticket, requester, rating, comment)


def rate(session: Session, actor: User, ticket_id: int, rating: str, comment: str | None) -> SatisfactionRating:
    """The requester rates their own ticket while logged in."""
    ticket = get_visible_ticket(session, actor, ticket_id)
    if ticket.created_by_id != actor.id:
        raise PermissionDenied("Only the person who filed the ticket can rate it.")
    return _record(session, ticket, actor, rating, comment)


def satisfaction_overview(session: Session, actor: User, *, days: int = 90) -> dict[str, Any]:
    """Good and bad ratings of the last `days`, overall, per moderator (who worked the ticket) and per category."""
    require_admin(actor)
    since = datetime.now(UTC) - timedelta(days=days)
    good = func.count(case((SatisfactionRating.rating == Rating.GOOD, 1)))
    bad = func.count(case((SatisfactionRating.rating == Rating.BAD, 1)))
    recent = SatisfactionRating.rated_at >= since

    def rows(*group: Any) -> list[dict[str, Any]]:
        query = select(*group, good, bad).where(recent).group_by(*group).order_by(*group)
        out = []
        for *keys, g, b in session.execute(query):
            out.append({"keys": keys, "good": g, "bad": b, "share_good": round(g / (g + b), 3) if g + b else None})
        return out

    moderators = rows(SatisfactionRating.assignee_id)
    names = dict(
        session.execute(select(User.id, User.name).where(User.id.in_([m["keys"][0] for m in moderators]))).all()
    )
    total_good, total_bad = session.execute(select(good, bad).where(recent)).one()
    return {
        "days": days,
        "good": total_good,
        "bad": total_bad,
        "share_good": round(total_good / (total_good + total_bad), 3) if total_good + total_bad else None,
        "by_moderator": [
            {"name": names.get(m["keys"][0], "unassigned"), **{k: m[k] for k in ("good", "bad", "share_good")}}
            for m in moderators
        ],
        "by_category": [
            {"category": c["keys"][0] or "untriaged", **{k: c[k] for k in ("good", "bad", "share_good")}}
            for c in rows(SatisfactionRating.category)
        ],
    }
