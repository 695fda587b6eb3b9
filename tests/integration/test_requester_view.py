"""What a requester sees of their ticket's history: what happened and who works on it, by name; never the
reasons staff gave, routing internals, or staff e-mail addresses."""

from __future__ import annotations

import json

from tests.factories import Factory
from ticketing_app.db import session_scope
from ticketing_app.domain import EventKind, TicketStatus
from ticketing_app.jobs.handlers import HANDLERS, on_dead
from ticketing_app.jobs.worker import drain
from ticketing_app.models import User
from ticketing_app.schemas import CommentCreate, TicketUpdate, UserUpdate
from ticketing_app.services import accounts, tickets

STAFF_REASONS = ["waiting on finance", "VIP account", "Mona is overloaded", "wrong queue", "re-routed", "matched"]


def act(who: User, ticket_id: int, **fields: object) -> None:
    with session_scope() as s:
        tickets.update_ticket(s, s.get(User, who.id), ticket_id, TicketUpdate(**fields))


def worked_ticket(factory: Factory) -> tuple[dict[str, User], int]:
    """A ticket with one of each staff action on its timeline, then resolved and reopened by its requester."""
    people = {
        "admin": factory.admin(),
        "mona": factory.user("moderator", skills=["billing", "payments"], name="Mona Moderator"),
        "max": factory.user("moderator", skills=["billing"], name="Max Moderator"),
        "rita": factory.user(name="Rita Requester"),
    }
    admin, mona, max_, rita = people.values()
    t = factory.ticket(rita, "Charged twice for my subscription", "My card was charged twice, refund one payment.")
    drain(HANDLERS, on_dead)  # triaged, routed to Mona with a "matched: ..." reason
    act(mona, t.id, status=TicketStatus.IN_PROGRESS, reason="waiting on finance")
    act(admin, t.id, priority="high", reason="VIP account")
    act(admin, t.id, category="account_access", reason="wrong queue")
    act(admin, t.id, assignee_id=max_.id, reason="Mona is overloaded")
    with session_scope() as s:  # Max leaves: the ticket is re-routed to Mona ("re-routed: Max ... was deactivated")
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=max_.email, active=False))
    with session_scope() as s:
        tickets.add_comment(s, s.get(User, mona.id), t.id, CommentCreate(body="Refund on its way."))
    act(mona, t.id, status=TicketStatus.RESOLVED, reason="refund issued per finance ticket F-12")
    act(rita, t.id, status=TicketStatus.OPEN, reason="Still charged twice")
    return people, t.id


def test_the_requester_sees_names_and_what_happened_not_staff_reasons_or_addresses(api, factory: Factory) -> None:
    people, ticket_id = worked_ticket(factory)
    r = api.get(f"/api/tickets/{ticket_id}", headers=factory.headers(people["rita"]))
    assert r.status_code == 200
    body = r.json()
    shown = json.dumps(body["events"]) + json.dumps(body["comments"]) + json.dumps(body["assigned_to"])
    for who in ("admin", "mona", "max"):
        assert people[who].email not in r.text, who
    for reason in [*STAFF_REASONS, "F-12", "admin fallback", "kept_from_staff", "fallback_reason"]:
        assert reason not in shown, reason
    assert body["assignment_reason"] is None
    kinds = [e["kind"] for e in body["events"]]
    assert kinds == [
        EventKind.CREATED,
        EventKind.TRIAGED,
        EventKind.ASSIGNED,
        EventKind.STATUS_CHANGED,
        EventKind.PRIORITY_OVERRIDDEN,
        EventKind.CATEGORY_OVERRIDDEN,
        EventKind.REASSIGNED,
        EventKind.REROUTED,
        EventKind.COMMENTED,
        EventKind.STATUS_CHANGED,
        EventKind.STATUS_CHANGED,
    ]
    by_kind = {e["kind"]: e for e in body["events"]}
    # Who works on it, by name.
    assert by_kind[EventKind.ASSIGNED]["data"] == {"to": {"id": people["mona"].id, "name": "Mona Moderator"}}
    assert by_kind[EventKind.REASSIGNED]["data"]["new"] == {"id": people["max"].id, "name": "Max Moderator"}
    assert by_kind[EventKind.REROUTED]["data"]["new"] == {"id": people["mona"].id, "name": "Mona Moderator"}
    assert by_kind[EventKind.REROUTED]["actor"] == {"id": people["admin"].id, "name": "Ada Admin", "email": None}
    assert body["assigned_to"] == {"id": people["mona"].id, "name": "Mona Moderator", "email": None}
    assert body["comments"][0]["author"] == {"id": people["mona"].id, "name": "Mona Moderator", "email": None}
    # What happened: the status, priority and category moves themselves.
    priority = by_kind[EventKind.PRIORITY_OVERRIDDEN]["data"]
    assert set(priority) == {"old", "new"} and priority["new"] == "high"
    assert by_kind[EventKind.CATEGORY_OVERRIDDEN]["data"] == {"old": "billing", "new": "account_access"}
    statuses = [e for e in body["events"] if e["kind"] == EventKind.STATUS_CHANGED]
    assert [(e["data"]["old"], e["data"]["new"]) for e in statuses] == [
        ("open", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "open"),
    ]
    assert "reason" not in statuses[0]["data"] and "reason" not in statuses[1]["data"]
    # Their own words stay theirs: the requester's reason for reopening, and their own address.
    assert statuses[2]["data"]["reason"] == "Still charged twice"
    assert statuses[2]["actor"]["email"] == people["rita"].email
    assert body["created_by"]["email"] == people["rita"].email


def test_staff_still_see_every_reason_and_address(api, factory: Factory) -> None:
    people, ticket_id = worked_ticket(factory)
    r = api.get(f"/api/tickets/{ticket_id}", headers=factory.headers(people["admin"]))
    assert r.status_code == 200
    body = r.json()
    for reason in ["waiting on finance", "VIP account", "Mona is overloaded", "wrong queue", "F-12"]:
        assert reason in r.text, reason
    rerouted = next(e for e in body["events"] if e["kind"] == EventKind.REROUTED)
    assert rerouted["data"]["reason"].startswith("re-routed: Max Moderator was deactivated; matched: ")
    assert rerouted["actor"]["email"] == people["admin"].email
    assert body["assigned_to"]["email"] == people["mona"].email
    assert body["assignment_reason"].startswith("re-routed: ")


def test_the_service_gives_a_requester_the_same_view(factory: Factory) -> None:
    people, ticket_id = worked_ticket(factory)
    with session_scope() as s:
        detail = tickets.get_ticket_detail(s, s.get(User, people["rita"].id), ticket_id)
    dumped = detail.model_dump_json()
    for who in ("admin", "mona", "max"):
        assert people[who].email not in dumped, who
    for reason in STAFF_REASONS:
        assert reason not in json.dumps([e.data for e in detail.events]), reason
    assert all(e.actor is None or e.actor.email in (None, people["rita"].email) for e in detail.events)


def test_a_moderator_who_filed_a_ticket_sees_it_as_a_requester(factory: Factory) -> None:
    factory.admin()
    filer = factory.user("moderator", skills=["sso"], name="Fay Filer")
    mona = factory.user("moderator", skills=["billing", "payments"], name="Mona Moderator")
    t = factory.ticket(filer, "Charged twice for my subscription", "My card was charged twice, refund one payment.")
    drain(HANDLERS, on_dead)
    with session_scope() as s:
        detail = tickets.get_ticket_detail(s, s.get(User, filer.id), t.id)
    assert detail.assigned_to is not None and detail.assigned_to.name == "Mona Moderator"
    assert mona.email not in detail.model_dump_json() and "matched" not in detail.model_dump_json()
