"""Who may see and who may manage a ticket. Every ticket read and write goes through these."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, true

from ticketing_app.domain import STAFF_ROLES, Role
from ticketing_app.models import Ticket, User


def visible_tickets(actor: User) -> ColumnElement[bool]:
    """SQL condition for the tickets `actor` may see: own, assigned to them (staff), or all (admin)."""
    if actor.role == Role.ADMIN:
        return true()
    if actor.role == Role.MODERATOR:
        return or_(Ticket.created_by_id == actor.id, Ticket.assigned_to_id == actor.id)
    return Ticket.created_by_id == actor.id


def visible_tickets_assigned_to(actor: User) -> ColumnElement[bool]:
    """The tickets assigned to `actor` that they may see. For staff that is all of them, so the condition
    is the assignee alone: a moderator's queue is then counted from an index without reading the table."""
    if actor.role in STAFF_ROLES:
        return Ticket.assigned_to_id == actor.id
    # Someone demoted to user keeps no view of tickets still assigned to them.
    return and_(Ticket.assigned_to_id == actor.id, visible_tickets(actor))


def can_see(actor: User, ticket: Ticket) -> bool:
    if actor.role == Role.ADMIN:
        return True
    if ticket.created_by_id == actor.id:
        return True
    return actor.role == Role.MODERATOR and ticket.assigned_to_id == actor.id


def can_manage(actor: User, ticket: Ticket) -> bool:
    """Status changes, overrides and reassignment: the assigned moderator or any admin."""
    if actor.role == Role.ADMIN:
        return True
    return actor.role == Role.MODERATOR and ticket.assigned_to_id == actor.id


def sees_staff_view(actor: User, ticket: Ticket) -> bool:
    """Internal notes, AI notes for the agent and the assignment reason: staff working the ticket only.

    A moderator who filed a ticket as a customer sees it as its requester does.
    """
    if actor.role == Role.ADMIN:
        return True
    return can_manage(actor, ticket) and ticket.created_by_id != actor.id


def staff_view_tickets(actor: User) -> ColumnElement[bool]:
    """SQL condition for `sees_staff_view`: the tickets whose internal notes `actor` may read."""
    if actor.role == Role.ADMIN:
        return true()
    if actor.role == Role.MODERATOR:
        return and_(Ticket.assigned_to_id == actor.id, Ticket.created_by_id != actor.id)
    return false()
