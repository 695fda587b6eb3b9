"""Canned replies: staff only, placeholders checked on save and filled per ticket, authors own their replies."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import update

from ticketing_app.db import session_scope
from ticketing_app.errors import InvalidInput
from ticketing_app.models import CannedReply, Ticket, User
from ticketing_app.schemas import CannedReplyIn, CannedReplyUpdate
from ticketing_app.services import canned_replies

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


# ----- placeholders, at the service level -----


_titles = itertools.count()


def _render(author: User, body: str, ticket_id: int, *, stored_as_is: bool = False) -> str:
    """Save a reply with `body` (straight into the table when `stored_as_is`, as if saved before a placeholder
    was removed) and fill it in for `ticket_id` as `author`."""
    with session_scope() as s:
        actor = s.get(User, author.id)
        if stored_as_is:
            reply = CannedReply(title=f"As is {next(_titles)}", body=body, created_by_id=actor.id)
            s.add(reply)
            s.flush()
        else:
            reply = canned_replies.create(s, actor, CannedReplyIn(title=f"Reply {next(_titles)}", body=body))
        return canned_replies.render(s, actor, reply.id, ticket_id).body


# What each documented placeholder becomes on the ticket of `_placeholder_world`.
EXPECTED = {
    "requester.name": "Rita Q. Requester",
    "requester.first_name": "Rita",
    "requester.email": "rita.requester@example.com",
    "ticket.number": "TCK-{number}",
    "ticket.title": "Cannot log in",
    "ticket.status": "in progress",
    "ticket.priority": "high",
    "ticket.category": "account",
    "agent.name": "Mo Derator",
    "agent.first_name": "Mo",
}


def _placeholder_world(factory) -> tuple[User, Ticket]:
    factory.admin()
    mod = factory.user("moderator", name="Mo Derator")
    requester = factory.user(name="Rita Q. Requester", email="rita.requester@example.com")
    ticket = factory.ticket(requester, "Cannot log in")
    with session_scope() as s:
        s.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id)
            .values(assigned_to_id=mod.id, status="in_progress", priority="high", category="account")
        )
    return mod, ticket


def test_every_documented_placeholder_is_filled_in(factory) -> None:
    assert set(EXPECTED) == set(canned_replies.PLACEHOLDERS)  # a new placeholder needs its line here
    assert {"requester.name", "ticket.number"} <= set(EXPECTED)  # the two the issue names
    mod, ticket = _placeholder_world(factory)
    for name, value in EXPECTED.items():
        expected = value.format(number=ticket.number)
        assert _render(mod, f"[{{{{{name}}}}}]", ticket.id) == f"[{expected}]", name
        assert _render(mod, f"<{{{{ {name} }}}}>", ticket.id) == f"<{expected}>", name  # spaces inside the braces
    everything = " ".join("{{" + name + "}}" for name in EXPECTED)
    assert _render(mod, everything, ticket.id) == " ".join(v.format(number=ticket.number) for v in EXPECTED.values())


def test_unset_priority_and_category_read_not_set(factory) -> None:
    mod, ticket = _placeholder_world(factory)
    with session_scope() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket.id).values(priority=None, category=None))
    assert _render(mod, "{{ticket.priority}}/{{ticket.category}}", ticket.id) == "not set/not set"


def test_hostile_values_come_out_as_typed_and_are_not_expanded_again(factory) -> None:
    """A requester's name or a title holding markup or `{{...}}` is inserted as plain text, once: the reply box
    and every page escape it where shown, and a value is never read as a placeholder itself."""
    factory.admin()
    mod = factory.user("moderator", name="Mo {{requester.email}}")
    hostile_name = "<script>alert(1)</script> {{agent.name}} {{ticket.number}} &amp;"
    requester = factory.user(name=hostile_name, email="victim@example.com")
    ticket = factory.ticket(requester, "{{requester.email}} <img src=x onerror=alert(2)>")
    _assign(ticket.id, mod.id)

    body = "Hi {{requester.name}} / {{requester.first_name}}: {{ticket.title}} ({{agent.name}})"
    assert _render(mod, body, ticket.id) == (
        f"Hi {hostile_name} / <script>alert(1)</script>: {{{{requester.email}}}} <img src=x onerror=alert(2)> "
        "(Mo {{requester.email}})"
    )
    # Nothing is escaped twice either: the text is what was typed, escaping is the renderer's job.
    assert "&lt;" not in _render(mod, "{{requester.name}}", ticket.id)


def test_unknown_placeholders_are_refused_when_saved_and_left_as_typed_when_stored(factory) -> None:
    mod, ticket = _placeholder_world(factory)
    with session_scope() as s:
        actor = s.get(User, mod.id)
        for body in ("Hi {{requester.nmae}}", "{{ ticket.secret }}", "{{requester}}", "{{REQUESTER.NAME}}"):
            with pytest.raises(InvalidInput) as refused:
                canned_replies.create(s, actor, CannedReplyIn(title="Typo", body=body))
            assert refused.value.field == "body" and "Known placeholders: {{requester.name}}" in str(refused.value)
        created = canned_replies.create(s, actor, CannedReplyIn(title="Fine", body="Hi {{requester.name}}"))
        with pytest.raises(InvalidInput):
            canned_replies.update(s, actor, created.id, CannedReplyUpdate(body="Hi {{agent.nmae}}"))
    # A reply stored before a placeholder went (or written to the table directly) is filled in around it.
    assert _render(mod, "{{agent.nmae}} {{agent.name}}", ticket.id, stored_as_is=True) == "{{agent.nmae}} Mo Derator"
    # What is not placeholder syntax (a filter, an attribute of something else, single braces) stays as typed.
    kept = "{{requester.name | upper}} {{ requester.name() }} {requester.name} {{{requester.name}}}"
    assert (
        _render(mod, kept, ticket.id)
        == "{{requester.name | upper}} {{ requester.name() }} {requester.name} {Rita Q. Requester}"
    )
