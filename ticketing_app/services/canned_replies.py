"""Canned replies: texts staff share, filled in per ticket from a fixed set of `{{placeholders}}`.

Written by hand rather than with a template engine: Jinja2 (even sandboxed) or a Mustache library would give
staff-written text a language with loops, filters and attribute access, where a dozen named values are all a
reply needs. A fixed set also lets a typo (`{{requester.nmae}}`) be refused when the reply is saved, not
discovered by a customer.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ticketing_app.domain import STAFF_ROLES, Role, label, ticket_reference
from ticketing_app.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ticketing_app.models import CannedReply, Ticket, User
from ticketing_app.schemas import CannedReplyIn, CannedReplyRendered, CannedReplyUpdate
from ticketing_app.services.accounts import escape_like
from ticketing_app.services.tickets import get_visible_ticket
from ticketing_app.services.visibility import sees_staff_view

__all__ = ["PLACEHOLDERS", "create", "delete", "get", "list_replies", "render", "update"]

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_.]+)\s*\}\}")


def _first(name: str) -> str:
    return name.split()[0] if name.split() else name


# What each placeholder becomes: (ticket, its requester, the staff member replying) -> text.
PLACEHOLDERS: dict[str, Callable[[Ticket, User, User], str]] = {
    "requester.name": lambda t, r, a: r.name,
    "requester.first_name": lambda t, r, a: _first(r.name),
    "requester.email": lambda t, r, a: r.email,
    "ticket.number": lambda t, r, a: ticket_reference(t.number),
    "ticket.title": lambda t, r, a: t.title,
    "ticket.status": lambda t, r, a: label(t.status).lower(),
    "ticket.priority": lambda t, r, a: label(t.priority, "not set").lower(),
    "ticket.category": lambda t, r, a: label(t.category, "not set").lower(),
    "agent.name": lambda t, r, a: a.name,
    "agent.first_name": lambda t, r, a: _first(a.name),
}


def _require_staff(actor: User) -> None:
    if actor.role not in STAFF_ROLES:
        raise PermissionDenied("Only staff can use canned replies.")


def _check_placeholders(body: str) -> None:
    unknown = sorted({name for name in _PLACEHOLDER.findall(body) if name not in PLACEHOLDERS})
    if unknown:
        known = ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)
        raise InvalidInput(
            f"Unknown placeholder {', '.join('{{' + n + '}}' for n in unknown)}. Known placeholders: {known}.",
            field="body",
        )


def _flush_unique(session: Session) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("A canned reply with this title exists already.") from None


def list_replies(session: Session, actor: User, *, q: str | None = None) -> list[CannedReply]:
    """Every shared reply, by title; `q` matches title or body."""
    _require_staff(actor)
    query = select(CannedReply).order_by(func.lower(CannedReply.title), CannedReply.id)
    if q:
        pattern = f"%{escape_like(q)}%"
        query = query.where(CannedReply.title.ilike(pattern) | CannedReply.body.ilike(pattern))
    return list(session.scalars(query))


def get(session: Session, actor: User, reply_id: int) -> CannedReply:
    _require_staff(actor)
    reply = session.get(CannedReply, reply_id)
    if reply is None:
        raise NotFound("No canned reply with this id.")
    return reply


def create(session: Session, actor: User, data: CannedReplyIn) -> CannedReply:
    """Any staff member may add a reply for everyone."""
    _require_staff(actor)
    _check_placeholders(data.body)
    reply = CannedReply(title=data.title, body=data.body, status=data.status, created_by_id=actor.id)
    session.add(reply)
    _flush_unique(session)
    session.refresh(reply)
    return reply


def _require_owner(actor: User, reply: CannedReply) -> None:
    if actor.role != Role.ADMIN and reply.created_by_id != actor.id:
        raise PermissionDenied("Only its author or an admin can change this canned reply.")


def update(session: Session, actor: User, reply_id: int, data: CannedReplyUpdate) -> CannedReply:
    """Its author or an admin may change a reply."""
    reply = get(session, actor, reply_id)
    _require_owner(actor, reply)
    if data.body is not None:
        _check_placeholders(data.body)
        reply.body = data.body
    if data.title is not None:
        reply.title = data.title
    if data.clear_status:
        reply.status = None
    elif data.status is not None:
        reply.status = data.status
    _flush_unique(session)
    session.refresh(reply)
    return reply


def delete(session: Session, actor: User, reply_id: int) -> None:
    reply = get(session, actor, reply_id)
    _require_owner(actor, reply)
    session.delete(reply)
    session.flush()


def render(session: Session, actor: User, reply_id: int, ticket_id: int) -> CannedReplyRendered:
    """The reply filled in for a ticket the actor works (as its staff, not as its requester)."""
    reply = get(session, actor, reply_id)
    ticket = get_visible_ticket(session, actor, ticket_id)
    if not sees_staff_view(actor, ticket):
        raise PermissionDenied("Canned replies are for staff working on this ticket.")

    def fill(match: re.Match[str]) -> str:
        value = PLACEHOLDERS.get(match.group(1))
        return value(ticket, ticket.created_by, actor) if value else match.group(0)

    return CannedReplyRendered(body=_PLACEHOLDER.sub(fill, reply.body), status=reply.status)
