"""A person who can no longer work tickets (deactivated, or demoted to user) leaves none stranded: their open
tickets are routed again at once, in the same transaction and under the routing lock."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select, text, update

from tests.factories import Factory
from ticketing_app.db import session_scope
from ticketing_app.domain import EmailKind, Role, TicketStatus
from ticketing_app.errors import Conflict
from ticketing_app.models import EmailMessage, Ticket, TicketEvent, User
from ticketing_app.schemas import UserUpdate
from ticketing_app.services import accounts, routing


def assigned_ticket(
    factory: Factory, requester: User, assignee: User, skills: list[str], status: str = TicketStatus.OPEN
) -> int:
    """A triaged ticket already routed to `assignee`."""
    t = factory.ticket(requester, "Help needed")
    with session_scope() as s:
        s.execute(
            update(Ticket)
            .where(Ticket.id == t.id)
            .values(
                required_skills=skills,
                triage_status="done",
                priority="medium",
                category="billing",
                status=status,
                assigned_to_id=assignee.id,
                assignment_reason="matched: earlier",
            )
        )
    return t.id


def change(admin: User, person: User, **fields: object) -> None:
    with session_scope() as s:
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=person.email, **fields))


def ticket(ticket_id: int) -> Ticket:
    with session_scope() as s:
        found = s.get(Ticket, ticket_id)
        assert found is not None
        return found


def reroute_events(ticket_id: int) -> list[TicketEvent]:
    with session_scope() as s:
        return list(
            s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "rerouted"))
        )


def assignment_mails(ticket_id: int) -> list[EmailMessage]:
    with session_scope() as s:
        return list(
            s.scalars(
                select(EmailMessage).where(
                    EmailMessage.ticket_id == ticket_id, EmailMessage.kind == EmailKind.TICKET_ASSIGNED
                )
            )
        )


@pytest.mark.parametrize(
    ("fields", "why"), [({"active": False}, "was deactivated"), ({"role": "user"}, "was demoted to user")]
)
def test_a_moderator_who_leaves_has_their_open_tickets_rerouted(factory: Factory, fields, why) -> None:
    admin = factory.admin()
    leaving = factory.user("moderator", skills=["billing", "payments"], name="Mona Leaving")
    best = factory.user("moderator", skills=["billing", "payments"], name="Bo Best")
    partial = factory.user("moderator", skills=["billing"])
    requester = factory.user()
    open_id = assigned_ticket(factory, requester, leaving, ["billing", "payments"])
    working_id = assigned_ticket(factory, requester, leaving, ["billing"], status=TicketStatus.IN_PROGRESS)
    done_id = assigned_ticket(factory, requester, leaving, ["billing"], status=TicketStatus.RESOLVED)

    change(admin, leaving, **fields)

    first, second = ticket(open_id), ticket(working_id)
    assert first.assigned_to_id == best.id  # the best skill match
    assert first.assignment_reason == f"re-routed: Mona Leaving {why}; matched: billing, payments; 0 open"
    assert second.assigned_to_id == partial.id  # equal coverage: the lighter load (best has one now)
    assert second.status == TicketStatus.IN_PROGRESS
    assert ticket(done_id).assigned_to_id == leaving.id  # closed work keeps its history
    [event] = reroute_events(open_id)
    assert event.actor_id == admin.id
    assert event.data["old"]["id"] == leaving.id and event.data["new"]["id"] == best.id
    assert event.data["reason"] == first.assignment_reason
    assert [m.to_address for m in assignment_mails(open_id)] == [best.email]
    assert [m.to_address for m in assignment_mails(working_id)] == [partial.email]
    assert reroute_events(done_id) == [] and assignment_mails(done_id) == []
    with session_scope() as s:
        assert accounts.open_load_by_user(s, [leaving.id]) == {leaving.id: 0}


def test_without_a_skilled_moderator_an_admin_takes_them(factory: Factory) -> None:
    admin = factory.admin()
    leaving = factory.user("moderator", skills=["kubernetes"], name="Kim")
    factory.user("moderator", skills=["billing"])
    ticket_id = assigned_ticket(factory, factory.user(), leaving, ["kubernetes"])
    change(admin, leaving, active=False)
    t = ticket(ticket_id)
    assert t.assigned_to_id == admin.id
    assert t.assignment_reason == (
        "re-routed: Kim was deactivated; no moderator with the required skills (kubernetes); admin fallback, 0 open"
    )
    assert [m.to_address for m in assignment_mails(ticket_id)] == [admin.email]


def test_the_requester_is_not_chosen_when_rerouting(factory: Factory) -> None:
    admin = factory.admin()
    leaving = factory.user("moderator", skills=["billing", "payments"])
    requesting_mod = factory.user("moderator", skills=["billing", "payments"])
    other = factory.user("moderator", skills=["billing"])
    ticket_id = assigned_ticket(factory, requesting_mod, leaving, ["billing", "payments"])
    change(admin, leaving, active=False)
    assert ticket(ticket_id).assigned_to_id == other.id


@pytest.mark.parametrize(
    ("fields", "why"), [({"active": False}, "was deactivated"), ({"role": "user"}, "was demoted to user")]
)
def test_an_admin_who_leaves_has_their_open_tickets_rerouted(factory: Factory, fields, why) -> None:
    admin = factory.admin()
    leaving = factory.user("admin", name="Ari Admin")
    mod = factory.user("moderator", skills=["billing"])
    skilled = assigned_ticket(factory, factory.user(), leaving, ["billing"])
    unskilled = assigned_ticket(factory, factory.user(), leaving, ["quantum"])
    change(admin, leaving, **fields)
    assert ticket(skilled).assigned_to_id == mod.id
    assert ticket(unskilled).assigned_to_id == admin.id
    assert ticket(unskilled).assignment_reason.startswith(f"re-routed: Ari Admin {why}; ")


def test_changes_that_keep_someone_working_reroute_nothing(factory: Factory) -> None:
    admin = factory.admin()
    mod = factory.user("moderator", skills=["billing"])
    factory.user("moderator", skills=["billing"])
    ticket_id = assigned_ticket(factory, factory.user(), mod, ["billing"])
    change(admin, mod, skills=["sso"])  # a moderator still sees (and works) what is assigned to them
    change(admin, mod, role="admin")
    change(admin, mod, role="moderator")
    assert ticket(ticket_id).assigned_to_id == mod.id
    assert reroute_events(ticket_id) == []


def test_a_rejected_change_reroutes_nothing(factory: Factory) -> None:
    admin = factory.admin()
    ticket_id = assigned_ticket(factory, factory.user(), admin, ["billing"])
    with pytest.raises(Conflict):
        change(admin, admin, active=False)
    assert ticket(ticket_id).assigned_to_id == admin.id


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(factory: Factory) -> None:
    admin = factory.admin()
    other = factory.user("admin")
    change(admin, other, active=False)  # another admin may go while one is left
    with pytest.raises(Conflict):
        change(admin, admin, role=Role.MODERATOR)  # an inactive admin does not count
    with pytest.raises(Conflict):
        change(admin, admin, active=False)
    change(admin, other, active=True)
    change(other, admin, role=Role.MODERATOR)
    with pytest.raises(Conflict):
        change(other, other, role=Role.USER)


def test_a_ticket_routed_while_the_change_waits_is_rerouted_too(factory: Factory) -> None:
    """The race: routing has picked the moderator (still active when it looked) and not committed yet while an
    admin deactivates them. update_user waits for the routing lock before it touches any row, so it sees that
    ticket and moves it, and never deadlocks with the routing."""
    admin = factory.admin()
    leaving = factory.user("moderator", skills=["billing"])
    other = factory.user("moderator", skills=["billing", "payments"])
    requester = factory.user()
    racing = factory.ticket(requester, "Routed during the change")
    with session_scope() as router:
        decision = routing.choose_assignee(router, ["billing", "payments"], requester_id=requester.id)
        assert decision.assignee is not None and decision.assignee.id == other.id
        router.execute(  # as if `leaving` had been the choice
            update(Ticket)
            .where(Ticket.id == racing.id)
            .values(assigned_to_id=leaving.id, required_skills=["billing"], assignment_reason="matched: billing")
        )
        errors: list[BaseException] = []

        def deactivate() -> None:
            try:
                change(admin, leaving, active=False)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        thread = threading.Thread(target=deactivate)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "update_user must wait for the routing lock"
        # Routing records its choice on the chosen person's row, as handle_assign does: a change that had
        # already locked that row before waiting for the routing lock would deadlock with it here.
        router.execute(update(User).where(User.id == leaving.id).values(last_assigned_at=func.now()))
    thread.join(10)
    assert not thread.is_alive() and errors == []
    assert ticket(racing.id).assigned_to_id == other.id
    assert [e.data["old"]["id"] for e in reroute_events(racing.id)] == [leaving.id]


def test_the_routing_lock_is_taken_by_update_user(factory: Factory) -> None:
    admin = factory.admin()
    mod = factory.user("moderator", skills=["billing"])
    with session_scope() as s:
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=mod.email, active=False))
        held = s.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND objid = :id AND granted"
            ),
            {"id": routing.ROUTING_LOCK_ID & 0xFFFFFFFF},
        )
        assert held == 1
