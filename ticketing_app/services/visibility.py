"""Who may see and who may manage a ticket. Every ticket read and write goes through these.

The requester's side of a ticket is its requester and its followers (ticket_followers, e.g. the requester of a
duplicate merged into it): they see it as the requester does (public view, no internal notes) and may reply.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    SQLColumnExpression,
    and_,
    any_,
    cast,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY

from ticketing_app.domain import STAFF_ROLES, Role
from ticketing_app.models import Ticket, TicketFollower, User


def followed_ids(actor: User) -> ColumnElement[Any]:
    """The ids of the tickets `actor` follows, as one array computed once per query (an uncorrelated InitPlan):
    `id = ANY(array)` can then be read through the primary key and OR'ed with the requester's index (a
    correlated EXISTS or IN would be checked row by row over the whole table)."""
    ids = select(func.coalesce(func.array_agg(TicketFollower.ticket_id), literal_column("'{}'::integer[]"))).where(
        TicketFollower.user_id == actor.id
    )
    # The cast keeps PostgreSQL from reading `ANY ((SELECT ...))` as a subquery's rows (integer = integer[]).
    return cast(ids.scalar_subquery(), ARRAY(Integer()))


def _requester_side(actor: User) -> ColumnElement[bool]:
    return or_(Ticket.created_by_id == actor.id, Ticket.id == any_(followed_ids(actor)))


def visible_tickets(actor: User) -> ColumnElement[bool]:
    """SQL condition for the tickets `actor` may see: own or followed, assigned to them (staff), or all (admin)."""
    return visible_parts_of(actor, Ticket.id, Ticket.created_by_id, Ticket.assigned_to_id, true())


def visible_parts_of(
    actor: User,
    ticket_id: SQLColumnExpression[Any],
    created_by_id: SQLColumnExpression[Any],
    assigned_to_id: SQLColumnExpression[Any],
    narrow: ColumnElement[bool],
) -> ColumnElement[bool]:
    """`visible_tickets` over any columns holding a ticket's id, requester and assignee (the copies on
    ticket_embeddings, migration 0020), each part AND-ed with `narrow`: a narrowing condition repeated inside
    every part lets each part be read through its own index with it (an OR of ANDs, not an AND of an OR)."""
    parts = visibility_parts(actor, ticket_id, created_by_id, assigned_to_id)
    if parts is None:
        return narrow
    return or_(*(and_(part, narrow) for part in parts))


def visibility_parts(
    actor: User,
    ticket_id: SQLColumnExpression[Any],
    created_by_id: SQLColumnExpression[Any],
    assigned_to_id: SQLColumnExpression[Any],
) -> list[ColumnElement[bool]] | None:
    """The parts of what `actor` sees (filed, followed, assigned to a moderator), each readable through one
    index; they may overlap. None for an admin, who sees everything."""
    if actor.role == Role.ADMIN:
        return None
    parts = [created_by_id == actor.id, ticket_id == any_(followed_ids(actor))]
    if actor.role == Role.MODERATOR:
        parts.append(assigned_to_id == actor.id)
    return parts


def visible_tickets_assigned_to(actor: User) -> ColumnElement[bool]:
    """The tickets assigned to `actor` that they may see. For staff that is all of them, so the condition
    is the assignee alone: a moderator's queue is then counted from an index without reading the table."""
    if actor.role in STAFF_ROLES:
        return Ticket.assigned_to_id == actor.id
    # Someone demoted to user keeps no view of tickets still assigned to them.
    return and_(Ticket.assigned_to_id == actor.id, visible_tickets(actor))


def follows(actor: User, ticket: Ticket) -> bool:
    """`actor` follows `ticket` (reads its followers, once per loaded ticket)."""
    return any(follower.user_id == actor.id for follower in ticket.followers)


def is_requester_side(actor: User, ticket: Ticket) -> bool:
    """The requester or a follower: sees the requester's view, replies as the requester, gets their mails."""
    return ticket.created_by_id == actor.id or follows(actor, ticket)


def can_see(actor: User, ticket: Ticket) -> bool:
    if actor.role == Role.ADMIN:
        return True
    if ticket.created_by_id == actor.id:
        return True
    if actor.role == Role.MODERATOR and ticket.assigned_to_id == actor.id:
        return True
    return follows(actor, ticket)


def can_manage(actor: User, ticket: Ticket) -> bool:
    """Status changes, overrides and reassignment: the assigned moderator or any admin."""
    if actor.role == Role.ADMIN:
        return True
    return actor.role == Role.MODERATOR and ticket.assigned_to_id == actor.id


def sees_staff_view(actor: User, ticket: Ticket) -> bool:
    """Internal notes, AI notes for the agent and the assignment reason: staff working the ticket only.

    A moderator who filed (or follows) a ticket as a customer sees it as its requester does.
    """
    if actor.role == Role.ADMIN:
        return True
    return can_manage(actor, ticket) and not is_requester_side(actor, ticket)


def staff_view_tickets(actor: User) -> ColumnElement[bool]:
    """SQL condition for `sees_staff_view`: the tickets whose internal notes `actor` may read."""
    if actor.role == Role.ADMIN:
        return true()
    if actor.role == Role.MODERATOR:
        return and_(Ticket.assigned_to_id == actor.id, not_(_requester_side(actor)))
    return false()


def visible_parts(actor: User, assigned: str) -> list[tuple[ColumnElement[bool], bool]]:
    """What `actor` may see under the "assigned" filter (me, unassigned or any), as disjoint parts, each with
    whether `actor` sees those tickets' staff view (`sees_staff_view`). Together they are exactly the tickets
    of `visible_tickets` (narrowed as list_tickets narrows them); search reads each part newest first through
    its own index (the assignee's or the requester's, migration 0019)."""
    me = actor.id
    if actor.role == Role.ADMIN:
        if assigned == "me":
            return [(Ticket.assigned_to_id == me, True)]
        if assigned == "unassigned":
            return [(Ticket.assigned_to_id.is_(None), True)]
        return [(true(), True)]
    own = Ticket.created_by_id == me
    # Followed tickets filed by someone else (read by primary key); a follower sees them as a requester does.
    followed = and_(Ticket.id == any_(followed_ids(actor)), Ticket.created_by_id != me)
    if assigned == "unassigned":
        return [(and_(part, Ticket.assigned_to_id.is_(None)), False) for part in (own, followed)]
    if actor.role == Role.MODERATOR:
        worked = and_(Ticket.assigned_to_id == me, not_(_requester_side(actor)))
        if assigned == "me":
            return [(worked, True), *((and_(Ticket.assigned_to_id == me, part), False) for part in (own, followed))]
        return [(worked, True), (own, False), (followed, False)]
    if assigned == "me":  # someone demoted to user keeps no view of tickets still assigned to them
        return [(and_(Ticket.assigned_to_id == me, part), False) for part in (own, followed)]
    return [(own, False), (followed, False)]
