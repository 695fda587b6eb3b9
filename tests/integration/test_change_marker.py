"""The fingerprint live pages poll: it moves exactly when what the viewer sees changes."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from tests.factories import Factory
from ticketing_app.db import session_scope
from ticketing_app.models import User
from ticketing_app.schemas import TicketFilters, TicketUpdate
from ticketing_app.services import tickets


def marker(user: User, filters: TicketFilters | None = None) -> str:
    with session_scope() as s:
        return tickets.change_marker(s, s.get(User, user.id), filters)


def set_status(actor: User, ticket_id: int, status: str) -> None:
    with session_scope() as s:
        tickets.update_ticket(s, s.get(User, actor.id), ticket_id, TicketUpdate(status=status))


def test_the_admins_marker_moves_on_every_new_ticket_and_every_change(factory: Factory) -> None:
    admin = factory.admin()
    requester = factory.user()
    empty = marker(admin)
    first = factory.ticket(requester, "First")
    after_one = marker(admin)
    assert after_one != empty and marker(admin) == after_one  # stable while nothing changes
    factory.ticket(requester, "Second")
    after_two = marker(admin)
    assert after_two != after_one
    set_status(admin, first.id, "in_progress")
    assert marker(admin) != after_two
    assert marker(admin, TicketFilters(assigned="any")) == marker(admin)


def test_a_filtered_marker_moves_when_a_ticket_leaves_the_view(factory: Factory) -> None:
    """Reassigned away, a ticket leaves a moderator's queue without raising any max: the count catches it."""
    admin = factory.admin()
    mod = factory.user("moderator", skills=["billing"])
    other = factory.user("moderator", skills=["billing"])
    requester = factory.user()
    ticket = factory.ticket(requester, "Refund please")
    with session_scope() as s:
        tickets.update_ticket(s, s.get(User, admin.id), ticket.id, TicketUpdate(assignee_id=mod.id, reason="yours"))
    mine = TicketFilters(assigned="me")
    before = marker(mod, mine)
    with session_scope() as s:
        tickets.update_ticket(s, s.get(User, admin.id), ticket.id, TicketUpdate(assignee_id=other.id, reason="theirs"))
    assert marker(mod, mine) != before
    unassigned = marker(admin, TicketFilters(assigned="unassigned"))
    factory.ticket(requester, "Another")
    assert marker(admin, TicketFilters(assigned="unassigned")) != unassigned


def test_a_change_committed_after_a_later_started_one_still_moves_the_marker(factory: Factory) -> None:
    """updated_at is the time of the write (clock_timestamp), not the start of its transaction (now()): a
    long transaction that commits after a short one still lands above the marker the poller last saw."""
    admin = factory.admin()
    requester = factory.user()
    first = factory.ticket(requester, "First")
    second = factory.ticket(requester, "Second")
    with session_scope() as slow:
        slow.execute(select(func.now()))  # the slow transaction has begun: now() is fixed from here
        time.sleep(0.05)
        set_status(admin, second.id, "in_progress")  # a quick one starts later and commits first
        seen = marker(admin)
        tickets.update_ticket(slow, slow.get(User, admin.id), first.id, TicketUpdate(status="in_progress"))
    assert marker(admin) != seen
