"""Canned replies: staff only, placeholders checked on save and filled per ticket, authors own their replies."""

from __future__ import annotations

from sqlalchemy import update

from ticketing_app.db import session_scope
from ticketing_app.models import Ticket

GREETING = {
    "title": "Password reset steps",
    "body": "Hi {{requester.first_name}},\n\nabout {{ticket.number}} ({{ ticket.title }}): use the reset link.\n"
    "{{agent.name}}",
    "status": "resolved",
}


def _assign(ticket_id: int, moderator_id: int) -> None:
    with session_scope() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket_id).values(assigned_to_id=moderator_id))


def test_staff_create_list_render_update_delete(api, factory) -> None:
    factory.admin()
    mod = factory.user("moderator", name="Mo Derator")
    requester = factory.user(name="Rita <b>Requester</b>")
    ticket = factory.ticket(requester, "Cannot log in")
    _assign(ticket.id, mod.id)
    headers = factory.headers(mod)

    r = api.post("/api/canned-replies", json=GREETING, headers=headers)
    assert r.status_code == 201, r.text
    reply = r.json()
    assert set(reply) == {"id", "title", "body", "status", "created_by", "created_at", "updated_at"}
    assert reply["created_by"]["id"] == mod.id and reply["status"] == "resolved"

    listed = api.get("/api/canned-replies", params={"q": "reset"}, headers=headers).json()
    assert [x["id"] for x in listed] == [reply["id"]]
    assert api.get("/api/canned-replies", params={"q": "nothing like it"}, headers=headers).json() == []

    r = api.get(f"/api/canned-replies/{reply['id']}/render", params={"ticket_id": ticket.id}, headers=headers)
    assert r.status_code == 200, r.text
    rendered = r.json()
    # Filled in as plain text: the reply is escaped where it is shown or mailed, like any comment.
    assert rendered == {
        "body": f"Hi Rita,\n\nabout TCK-{ticket.number} (Cannot log in): use the reset link.\nMo Derator",
        "status": "resolved",
    }

    r = api.patch(f"/api/canned-replies/{reply['id']}", json={"clear_status": True, "title": "Reset"}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] is None and r.json()["title"] == "Reset"
    assert api.delete(f"/api/canned-replies/{reply['id']}", headers=headers).status_code == 204
    assert api.get(f"/api/canned-replies/{reply['id']}", headers=headers).status_code == 404


def test_users_are_refused_everything(api, factory) -> None:
    admin = factory.admin()
    user = factory.user()
    created = api.post("/api/canned-replies", json=GREETING, headers=factory.headers(admin)).json()
    headers = factory.headers(user)
    assert api.get("/api/canned-replies", headers=headers).status_code == 403
    assert api.post("/api/canned-replies", json=GREETING, headers=headers).status_code == 403
    assert api.get(f"/api/canned-replies/{created['id']}", headers=headers).status_code == 403
    assert api.patch(f"/api/canned-replies/{created['id']}", json={"title": "x"}, headers=headers).status_code == 403
    assert api.delete(f"/api/canned-replies/{created['id']}", headers=headers).status_code == 403
    assert api.get("/api/canned-replies").status_code == 401


def test_unknown_placeholder_and_duplicate_title_are_refused_clearly(api, factory) -> None:
    admin = factory.admin()
    headers = factory.headers(admin)
    r = api.post("/api/canned-replies", json={**GREETING, "body": "Hi {{requester.nmae}}"}, headers=headers)
    assert r.status_code == 422
    assert "{{requester.nmae}}" in r.json()["detail"] and "{{requester.name}}" in r.json()["detail"]
    assert api.post("/api/canned-replies", json=GREETING, headers=headers).status_code == 201
    r = api.post("/api/canned-replies", json={**GREETING, "title": GREETING["title"].upper()}, headers=headers)
    assert r.status_code == 409 and "title" in r.json()["detail"]
    r = api.post("/api/canned-replies", json={**GREETING, "status": "bogus"}, headers=headers)
    assert r.status_code == 422


def test_only_author_or_admin_changes_a_reply(api, factory) -> None:
    admin = factory.admin()
    author, other = factory.user("moderator"), factory.user("moderator")
    created = api.post("/api/canned-replies", json=GREETING, headers=factory.headers(author)).json()
    path = f"/api/canned-replies/{created['id']}"
    assert api.patch(path, json={"title": "Mine now"}, headers=factory.headers(other)).status_code == 403
    assert api.delete(path, headers=factory.headers(other)).status_code == 403
    assert api.get(path, headers=factory.headers(other)).status_code == 200  # shared for reading
    assert api.patch(path, json={"title": "Fixed by admin"}, headers=factory.headers(admin)).status_code == 200


def test_render_only_for_staff_working_the_ticket(api, factory) -> None:
    admin = factory.admin()
    mod, other_mod = factory.user("moderator"), factory.user("moderator")
    requester = factory.user()
    ticket = factory.ticket(requester)
    _assign(ticket.id, mod.id)
    created = api.post("/api/canned-replies", json=GREETING, headers=factory.headers(admin)).json()
    path = f"/api/canned-replies/{created['id']}/render"
    assert api.get(path, params={"ticket_id": ticket.id}, headers=factory.headers(other_mod)).status_code == 404
    assert api.get(path, params={"ticket_id": ticket.id}, headers=factory.headers(admin)).status_code == 200
    # A moderator's own ticket, filed as a customer: they are its requester there, not its staff.
    own = factory.ticket(mod)
    _assign(own.id, mod.id)
    assert api.get(path, params={"ticket_id": own.id}, headers=factory.headers(mod)).status_code == 403
    assert api.get(path, params={"ticket_id": 2**40}, headers=factory.headers(admin)).status_code == 422
