"""Every ticket rule, tried by every role, at the service layer (the UI and the API call these)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ticketing_app.db import session_scope
from ticketing_app.errors import InvalidInput, NotFound, PermissionDenied
from ticketing_app.models import Ticket, User
from ticketing_app.schemas import CommentCreate, TicketFilters, TicketUpdate
from ticketing_app.services import tickets

OK, DENIED, HIDDEN = "ok", "403", "404"
ROLES = ("requester", "other_user", "assignee", "other_moderator", "admin")


@pytest.fixture()
def world(factory):
    """A requester's ticket assigned to one moderator, plus bystanders of every role."""
    people = {
        "admin": factory.admin(),
        "requester": factory.user(name="Rita Requester"),
        "other_user": factory.user(name="Otto Other"),
        "assignee": factory.user("moderator", skills=["billing"], name="Moe Assignee"),
        "other_moderator": factory.user("moderator", skills=["billing"], name="Mia Other"),
    }
    ticket = factory.ticket(people["requester"], "Charged twice", "Two charges on my card.")
    with session_scope() as s:
        t = s.get(Ticket, ticket.id)
        t.assigned_to_id = people["assignee"].id
    return people, ticket.id


def attempt(actor: User, action: Callable) -> str:
    try:
        with session_scope() as s:
            action(s, s.get(User, actor.id))
    except NotFound:
        return HIDDEN
    except PermissionDenied:
        return DENIED
    return OK


ACTIONS: dict[str, tuple[Callable, dict[str, str]]] = {
    "view": (
        lambda tid: lambda s, u: tickets.get_ticket_detail(s, u, tid),
        {"requester": OK, "other_user": HIDDEN, "assignee": OK, "other_moderator": HIDDEN, "admin": OK},
    ),
    "public_reply": (
        lambda tid: lambda s, u: tickets.add_comment(s, u, tid, CommentCreate(body="hello")),
        {"requester": OK, "other_user": HIDDEN, "assignee": OK, "other_moderator": HIDDEN, "admin": OK},
    ),
    "internal_note": (
        lambda tid: lambda s, u: tickets.add_comment(s, u, tid, CommentCreate(body="note", internal=True)),
        {"requester": DENIED, "other_user": HIDDEN, "assignee": OK, "other_moderator": HIDDEN, "admin": OK},
    ),
    "start_work": (
        lambda tid: lambda s, u: tickets.update_ticket(s, u, tid, TicketUpdate(status="in_progress")),
        {"requester": DENIED, "other_user": HIDDEN, "assignee": OK, "other_moderator": HIDDEN, "admin": OK},
    ),
    "resolve": (
        lambda tid: lambda s, u: tickets.update_ticket(s, u, tid, TicketUpdate(status="resolved")),
        {"requester": DENIED, "other_user": HIDDEN, "assignee": OK, "other_moderator": HIDDEN, "admin": OK},
    ),
    "override_priority": (
        lambda tid: lambda s, u: tickets.update_ticket(s, u, tid, TicketUpdate(priority="high", reason="VIP")),
        {"requester": DENIED, "other_user": HIDDEN, "assignee": OK, "other_moderator": HIDDEN, "admin": OK},
    ),
    "override_category": (
        lambda tid: lambda s, u: tickets.update_ticket(s, u, tid, TicketUpdate(category="bug", reason="is a bug")),
        {"requester": DENIED, "other_user": HIDDEN, "assignee": OK, "other_moderator": HIDDEN, "admin": OK},
    ),
    "reassign_to_admin": (
        lambda tid: lambda s, u: tickets.update_ticket(s, u, tid, TicketUpdate(assignee_id=1, reason="escalate")),
        {"requester": DENIED, "other_user": HIDDEN, "assignee": OK, "other_moderator": HIDDEN, "admin": OK},
    ),
    "unassign": (
        lambda tid: lambda s, u: tickets.update_ticket(s, u, tid, TicketUpdate(assignee_id=None)),
        {"requester": DENIED, "other_user": HIDDEN, "assignee": DENIED, "other_moderator": HIDDEN, "admin": OK},
    ),
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_role_by_action_matrix(world, role, action):
    people, ticket_id = world
    make, expected = ACTIONS[action]
    assert people["admin"].id == 1  # reassign_to_admin targets the admin by id
    assert attempt(people[role], make(ticket_id)) == expected[role]


def test_a_denied_action_changes_nothing(world):
    people, ticket_id = world
    before_status = None
    with session_scope() as s:
        before_status = s.get(Ticket, ticket_id).status
    attempt(
        people["requester"],
        lambda s, u: tickets.update_ticket(s, u, ticket_id, TicketUpdate(status="closed", priority="high")),
    )
    with session_scope() as s:
        t = s.get(Ticket, ticket_id)
        assert (t.status, t.priority) == (before_status, None)
        assert [e.kind for e in tickets.get_ticket_detail(s, s.get(User, 1), ticket_id).events] == ["created"]


@pytest.mark.parametrize("role", ROLES)
def test_list_shows_only_visible_tickets(world, factory, role):
    people, ticket_id = world
    own = factory.ticket(people["other_user"], "Other's issue", "Only theirs.")
    with session_scope() as s:
        page = tickets.list_tickets(s, s.get(User, people[role].id), TicketFilters())
    seen = {t.id for t in page.items}
    expected = {
        "requester": {ticket_id},
        "other_user": {own.id},
        "assignee": {ticket_id},
        "other_moderator": set(),
        "admin": {ticket_id, own.id},
    }[role]
    assert seen == expected and page.total == len(expected)


def test_requester_can_reopen_and_close_a_resolved_ticket_only(world):
    people, ticket_id = world
    req = people["requester"]
    assert attempt(req, lambda s, u: tickets.update_ticket(s, u, ticket_id, TicketUpdate(status="closed"))) == DENIED
    attempt(people["assignee"], lambda s, u: tickets.update_ticket(s, u, ticket_id, TicketUpdate(status="resolved")))
    assert attempt(req, lambda s, u: tickets.update_ticket(s, u, ticket_id, TicketUpdate(status="open"))) == OK
    with session_scope() as s:
        t = s.get(Ticket, ticket_id)
        assert (t.status, t.resolved_at) == ("open", None)


def test_internal_notes_and_agent_fields_never_reach_the_requester(world):
    people, ticket_id = world
    with session_scope() as s:
        t = s.get(Ticket, ticket_id)
        t.helpful_notes, t.assignment_reason = "Check the payment provider first", "matched: billing; 0 open"
    attempt(
        people["assignee"],
        lambda s, u: tickets.add_comment(s, u, ticket_id, CommentCreate(body="secret", internal=True)),
    )
    attempt(people["assignee"], lambda s, u: tickets.add_comment(s, u, ticket_id, CommentCreate(body="public")))
    with session_scope() as s:
        mine = tickets.get_ticket_detail(s, s.get(User, people["requester"].id), ticket_id)
        staff = tickets.get_ticket_detail(s, s.get(User, people["assignee"].id), ticket_id)
    assert [c.body for c in mine.comments] == ["public"]
    assert not any(e.data.get("internal") for e in mine.events)
    assert mine.helpful_notes is None and mine.assignment_reason is None
    assert [c.body for c in staff.comments] == ["secret", "public"]
    assert staff.helpful_notes == "Check the payment provider first"


def test_overrides_need_a_reason_and_a_known_category(world):
    people, ticket_id = world
    with session_scope() as s, pytest.raises(InvalidInput, match="reason"):
        tickets.update_ticket(s, s.get(User, people["admin"].id), ticket_id, TicketUpdate(priority="high"))
    with session_scope() as s, pytest.raises(InvalidInput, match="Unknown category"):
        tickets.update_ticket(
            s, s.get(User, people["admin"].id), ticket_id, TicketUpdate(category="astrology", reason="why not")
        )


def test_reassignment_only_to_active_staff(world):
    people, ticket_id = world
    for target in (people["other_user"].id, 9999):
        with session_scope() as s, pytest.raises(InvalidInput, match="active moderator or admin"):
            tickets.update_ticket(
                s, s.get(User, people["admin"].id), ticket_id, TicketUpdate(assignee_id=target, reason="x")
            )


def test_every_change_is_on_the_timeline_with_who_and_why(world):
    people, ticket_id = world
    admin = people["admin"]
    steps = [
        TicketUpdate(priority="high", reason="customer is blocked"),
        TicketUpdate(category="bug", reason="actually a defect"),
        TicketUpdate(status="in_progress"),
        TicketUpdate(assignee_id=people["other_moderator"].id, reason="on holiday"),
        TicketUpdate(status="resolved"),
    ]
    for step in steps:
        with session_scope() as s:
            tickets.update_ticket(s, s.get(User, admin.id), ticket_id, step)
    with session_scope() as s:
        events = tickets.get_ticket_detail(s, s.get(User, admin.id), ticket_id).events
        t = s.get(Ticket, ticket_id)
        assert t.resolved_at is not None and t.assigned_to_id == people["other_moderator"].id
    kinds = [(e.kind, e.actor.id if e.actor else None, e.data.get("reason")) for e in events]
    assert kinds == [
        ("created", people["requester"].id, None),
        ("priority_overridden", admin.id, "customer is blocked"),
        ("category_overridden", admin.id, "actually a defect"),
        ("status_changed", admin.id, None),
        ("reassigned", admin.id, "on holiday"),
        ("status_changed", admin.id, None),
    ]


def test_requester_timeline_hides_routing_internals(world):
    people, ticket_id = world
    from ticketing_app.services import events

    with session_scope() as s:
        t = s.get(Ticket, ticket_id)
        events.record(s, t, "assigned", None, to={"id": 2, "name": "Moe"}, reason="matched: billing; 3 open")
    with session_scope() as s:
        mine = tickets.get_ticket_detail(s, s.get(User, people["requester"].id), ticket_id)
        staff = tickets.get_ticket_detail(s, s.get(User, people["admin"].id), ticket_id)
    assert mine.events[-1].data == {"to": {"id": 2, "name": "Moe"}}
    assert staff.events[-1].data["reason"] == "matched: billing; 3 open"
