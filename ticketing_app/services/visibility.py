"""Who may see and who may manage a ticket. Every ticket read and write goes through these."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, true

from ticketing_app.models import Ticket, User


def visible_tickets(actor: User) -> ColumnElement[bool]:
    """SQL condition for the tickets `actor` may see: own, assigned to them (staff), or all (admin)."""
    if actor.role == "admin":
        return true()
    if actor.role == "moderator":
        return or_(Ticket.created_by_id == actor.id, Ticket.assigned_to_id == actor.id)
    return Ticket.created_by_id == actor.id


def can_see(actor: User, ticket: Ticket) -> bool:
    if actor.role == "admin":
        return True
    if ticket.created_by_id == actor.id:
        return True
    return actor.role == "moderator" and ticket.assigned_to_id == actor.id


def can_manage(actor: User, ticket: Ticket) -> bool:
    """Status changes, overrides and reassignment: the assigned moderator or any admin."""
    if actor.role == "admin":
        return True
    return actor.role == "moderator" and ticket.assigned_to_id == actor.id


def sees_staff_view(actor: User, ticket: Ticket) -> bool:
    """Internal notes, AI notes for the agent and the assignment reason: staff working the ticket only.

    A moderator who filed a ticket as a customer sees it as its requester does.
    """
    if actor.role == "admin":
        return True
    return can_manage(actor, ticket) and ticket.created_by_id != actor.id
