"""Choose who works a ticket: the best skill match, then the lightest load, then round robin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, ScalarSelect, func, literal_column, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import QueryableAttribute, Session

from ticketing_app.domain import EventKind, Role
from ticketing_app.models import TICKET_IS_ACTIVE, Ticket, User
from ticketing_app.services import events, notifications
from ticketing_app.skills import canonical_skill

# Routing decisions are serialised with this transaction-level lock, so two tickets routed at the
# same moment both see each other's assignment in the load they compare (no pile-up on one person).
ROUTING_LOCK_ID = 0x726F757465  # "route"
_LOCKED_IN_TRANSACTION = "routing_lock_held"


def open_load(user_id: ColumnElement[int] | QueryableAttribute[int]) -> ScalarSelect[int]:
    """A person's load: the open or in-progress tickets assigned to them (what routing balances, admins see)."""
    return select(func.count()).where(Ticket.assigned_to_id == user_id, TICKET_IS_ACTIVE).scalar_subquery()


# The load of candidate `u`, written into the routing statements below.
_LOAD = str(open_load(literal_column("u.id")).compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]

# The requester is never a candidate: a moderator who filed a ticket as a customer sees it as its requester
# does (services.visibility), so it would sit in their queue where they cannot work it.
# Best coverage first, then the lightest load, then the least recently assigned. Only moderators with the
# best coverage can win, so their load alone is counted: with many moderators, a request has many candidates
# sharing one skill but only a handful covering them all, and counting every candidate's tickets dominated.
_BEST_MODERATOR = f"""
    WITH candidates AS MATERIALIZED (
        SELECT u.id, u.last_assigned_at,
               cardinality(ARRAY(SELECT unnest(u.skill_keys) INTERSECT SELECT unnest(CAST(:keys AS text[]))))
                   AS coverage
        FROM users u
        WHERE u.role = '{Role.MODERATOR}' AND u.is_active AND u.skill_keys && CAST(:keys AS text[])
          AND u.id IS DISTINCT FROM CAST(:requester AS integer)
    )
    SELECT u.id, u.coverage, {_LOAD} AS load
    FROM candidates u
    WHERE u.coverage = (SELECT max(coverage) FROM candidates)
    ORDER BY load ASC, u.last_assigned_at ASC NULLS FIRST, u.id
    LIMIT 1
"""

# An admin who filed the ticket comes last: they get it only when they are the only active admin (an admin sees
# every ticket anyway, and an assigned ticket stays in someone's queue, load and SLA instead of waiting).
_LEAST_LOADED_ADMIN = f"""
    SELECT u.id, 0 AS coverage, {_LOAD} AS load
    FROM users u
    WHERE u.role = '{Role.ADMIN}' AND u.is_active
    ORDER BY u.id IS NOT DISTINCT FROM CAST(:requester AS integer), load ASC, u.last_assigned_at ASC NULLS FIRST,
             u.id
    LIMIT 1
"""


@dataclass(frozen=True)
class RoutingDecision:
    assignee: User | None
    reason: str
    matched_skills: tuple[str, ...] = ()


def lock(session: Session) -> None:
    """Take the routing lock for the rest of the caller's transaction (once; later calls are free).

    Whoever takes it together with ticket or user row locks takes it first, so that no two transactions
    wait for each other in a cycle.
    """
    transaction = session.get_transaction()
    if transaction is None or session.info.get(_LOCKED_IN_TRANSACTION) is not transaction:
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ROUTING_LOCK_ID})
        session.info[_LOCKED_IN_TRANSACTION] = session.get_transaction()  # held until it ends: take it once


def choose_assignee(session: Session, required_skills: list[str], requester_id: int | None = None) -> RoutingDecision:
    """Pick an assignee inside the caller's transaction (which must then record the assignment).

    `requester_id`, who filed the ticket, is never chosen, except an admin when no other admin is active.
    """
    lock(session)
    keys = sorted({canonical_skill(s) for s in required_skills})
    if keys:
        row = session.execute(text(_BEST_MODERATOR), {"keys": keys, "requester": requester_id}).first()
        if row is not None:
            moderator = session.get(User, row.id)
            assert moderator is not None
            offered = set(moderator.skill_keys or [])
            matched = tuple(s for s in required_skills if canonical_skill(s) in offered)
            return RoutingDecision(moderator, f"matched: {', '.join(matched)}; {row.load} open", matched_skills=matched)
    row = session.execute(text(_LEAST_LOADED_ADMIN), {"requester": requester_id}).first()
    wanted = ", ".join(required_skills) if required_skills else "none identified"
    if row is not None:
        admin = session.get(User, row.id)
        fallback = "the requester is the only active admin" if row.id == requester_id else "admin fallback"
        return RoutingDecision(admin, f"no moderator with the required skills ({wanted}); {fallback}, {row.load} open")
    return RoutingDecision(
        None, f"no moderator with the required skills ({wanted}) and no active admin; left unassigned"
    )


def reroute_open_tickets(session: Session, actor: User, person: User, why: str) -> list[Ticket]:
    """Route again, at once, every open ticket assigned to `person`, who can no longer work them (`why`: "was
    deactivated"). The caller has flushed the change that makes `person` no candidate, in this transaction.

    The normal routing (never the ticket's requester), an audit event by `actor` whose reason says why, and
    the assignment e-mail to each new assignee. Under the routing lock, taken before the tickets' row locks:
    a routing running concurrently either finished before (its ticket is found here) or waits, then sees that
    `person` is no longer a candidate.
    """
    lock(session)
    tickets = session.scalars(
        select(Ticket)
        .where(Ticket.assigned_to_id == person.id, TICKET_IS_ACTIVE)
        .order_by(Ticket.id)  # locked in id order, like every batch of tickets
        .with_for_update(of=Ticket)
    ).all()
    # The most urgent first: it gets the first pick of the lightest loads.
    ordered = sorted(tickets, key=lambda t: (t.priority_rank, t.due_at is None, t.due_at or t.created_at, t.id))
    drafts: list[notifications.Draft] = []
    for ticket in ordered:
        # Its query flushes the re-assignments made before it, so each choice counts them.
        decision = choose_assignee(session, list(ticket.required_skills or []), requester_id=ticket.created_by_id)
        reason = f"re-routed: {person.name} {why}; {decision.reason}"
        events.record(
            session,
            ticket,
            EventKind.REROUTED,
            actor,
            old=events.user_brief(person),
            new=events.user_brief(decision.assignee),
            reason=reason,
        )
        now = datetime.now(UTC)
        ticket.assigned_to_id = decision.assignee.id if decision.assignee is not None else None
        ticket.assigned_to = decision.assignee
        ticket.assigned_at = now
        ticket.assignment_reason = reason
        if decision.assignee is not None:
            decision.assignee.last_assigned_at = now
            drafts.append(notifications.assignment_draft(ticket, decision.assignee, reassigned=True))
    notifications.queue_emails(session, drafts)
    return list(ordered)
