"""Queue work in bulk (same rules and audit events as one by one) and saved filters per person."""

from __future__ import annotations

from sqlalchemy import func, select, update

from ticketing_app.db import session_scope
from ticketing_app.models import Ticket, TicketEvent


def _assign(ticket_id: int, user_id: int) -> None:
    with session_scope() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket_id).values(assigned_to_id=user_id, priority="low"))


def test_bulk_status_and_priority_with_per_ticket_refusals(api, factory) -> None:
    factory.admin()
    mod, other = factory.user("moderator"), factory.user("moderator")
    requester = factory.user()
    mine = [factory.ticket(requester, f"Mine {i}").id for i in range(3)]
    theirs = factory.ticket(requester, "Theirs").id
    for t in mine:
        _assign(t, mod.id)
    _assign(theirs, other.id)
    headers = factory.headers(mod)

    r = api.post(
        "/api/tickets/bulk", json={"ticket_ids": [*mine, theirs, mine[0]], "status": "in_progress"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == mine
    assert r.json()["failed"] == [{"id": theirs, "detail": "Ticket not found."}]
    with session_scope() as s:
        assert set(s.scalars(select(Ticket.status).where(Ticket.id.in_(mine)))) == {"in_progress"}
        assert s.get(Ticket, theirs).status == "open"
        events = s.scalar(
            select(func.count()).where(TicketEvent.ticket_id.in_(mine), TicketEvent.kind == "status_changed")
        )
    assert events == 3  # one audit event per ticket, as one by one

    r = api.post("/api/tickets/bulk", json={"ticket_ids": mine, "priority": "high"}, headers=headers)
    assert r.json()["updated"] == [] and all("reason" in f["detail"].lower() for f in r.json()["failed"])
    r = api.post(
        "/api/tickets/bulk", json={"ticket_ids": mine, "priority": "high", "reason": "outage"}, headers=headers
    )
    assert r.json()["updated"] == mine
    r = api.post(
        "/api/tickets/bulk", json={"ticket_ids": mine, "assignee_id": other.id, "reason": "holiday"}, headers=headers
    )
    assert r.json()["updated"] == mine
    with session_scope() as s:
        assert set(s.scalars(select(Ticket.assigned_to_id).where(Ticket.id.in_(mine)))) == {other.id}


def test_bulk_refuses_users_and_empty_changes(api, factory) -> None:
    admin = factory.admin()
    requester = factory.user()
    t = factory.ticket(requester).id
    assert (
        api.post(
            "/api/tickets/bulk", json={"ticket_ids": [t], "status": "closed"}, headers=factory.headers(requester)
        ).status_code
        == 403
    )
    assert api.post("/api/tickets/bulk", json={"ticket_ids": [t]}, headers=factory.headers(admin)).status_code == 422
    assert (
        api.post(
            "/api/tickets/bulk", json={"ticket_ids": [], "status": "closed"}, headers=factory.headers(admin)
        ).status_code
        == 422
    )
    too_many = {"ticket_ids": list(range(1, 102)), "status": "closed"}
    assert api.post("/api/tickets/bulk", json=too_many, headers=factory.headers(admin)).status_code == 422


def test_saved_filters_are_per_person(api, factory) -> None:
    mod, other = factory.user("moderator"), factory.user("moderator")
    headers = factory.headers(mod)
    body = {"name": "Urgent billing", "filters": {"priority": "high", "category": "billing", "active": True}}
    r = api.post("/api/me/filters", json=body, headers=headers)
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["filters"] == {"priority": "high", "category": "billing", "active": True}
    replaced = api.post(
        "/api/me/filters", json={**body, "name": "URGENT billing", "filters": {"priority": "medium"}}, headers=headers
    )
    assert replaced.json()["id"] == saved["id"] and replaced.json()["filters"] == {"priority": "medium"}
    assert [f["name"] for f in api.get("/api/me/filters", headers=headers).json()] == ["URGENT billing"]
    assert api.get("/api/me/filters", headers=factory.headers(other)).json() == []
    assert api.delete(f"/api/me/filters/{saved['id']}", headers=factory.headers(other)).status_code == 404
    assert (
        api.post("/api/me/filters", json={"name": "x", "filters": {"status": "bogus"}}, headers=headers).status_code
        == 422
    )
    assert api.delete(f"/api/me/filters/{saved['id']}", headers=headers).status_code == 204
    assert api.get("/api/me/filters", headers=headers).json() == []
