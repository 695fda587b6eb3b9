"""Collision detection: staff on the same ticket see each other and who is typing; a stale reply is held once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text, update

from ticketing_app.db import session_scope
from ticketing_app.models import Ticket, TicketViewer, User
from ticketing_app.services import presence


def _assign(ticket_id: int, moderator_id: int) -> None:
    with session_scope() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket_id).values(assigned_to_id=moderator_id))


def _beat(user: User, ticket_id: int, *, typing: bool = False) -> list[presence.Viewer]:
    with session_scope() as s:
        return presence.heartbeat(s, s.get(User, user.id), s.get(Ticket, ticket_id), typing=typing)


def test_staff_see_each_other_and_who_is_typing(factory) -> None:
    admin = factory.admin()
    mod = factory.user("moderator", name="Mo")
    requester = factory.user(name="Rita")
    ticket = factory.ticket(requester)
    _assign(ticket.id, mod.id)

    assert _beat(admin, ticket.id) == []  # alone so far
    assert _beat(mod, ticket.id, typing=True) == [presence.Viewer(admin.id, "Ada Admin", False)]
    assert _beat(admin, ticket.id) == [presence.Viewer(mod.id, "Mo", True)]
    assert _beat(mod, ticket.id) == [presence.Viewer(admin.id, "Ada Admin", False)]
    assert _beat(admin, ticket.id) == [presence.Viewer(mod.id, "Mo", True)]  # a plain report keeps the typing on
    with session_scope() as s:  # the key press runs out; then Mo closes the page and is not seen again
        s.execute(text("UPDATE ticket_viewers SET typing_until = now() - interval '1 second'"))
    assert _beat(admin, ticket.id) == [presence.Viewer(mod.id, "Mo", False)]
    with session_scope() as s:
        s.execute(
            update(TicketViewer)
            .where(TicketViewer.user_id == mod.id)
            .values(seen_at=func.now() - timedelta(seconds=presence.VIEWER_TTL_SECONDS))
        )
    assert _beat(admin, ticket.id) == []


def test_requesters_and_bystanders_take_no_part(factory) -> None:
    admin = factory.admin()
    mod, bystander = factory.user("moderator"), factory.user("moderator")
    requester = factory.user()
    ticket = factory.ticket(requester)
    _assign(ticket.id, mod.id)
    _beat(admin, ticket.id, typing=True)
    assert _beat(requester, ticket.id) == []  # never told who works on it now
    assert _beat(bystander, ticket.id) == []
    with session_scope() as s:
        assert set(s.scalars(select(TicketViewer.user_id))) == {admin.id}  # and never listed
    assert _beat(mod, ticket.id) == [presence.Viewer(admin.id, "Ada Admin", True)]


def test_stale_reply_is_refused_once_with_a_clear_message(api, factory) -> None:
    admin = factory.admin()
    mod = factory.user("moderator")
    requester = factory.user()
    ticket = factory.ticket(requester)
    _assign(ticket.id, mod.id)
    url = f"/api/tickets/{ticket.id}/comments"

    first = api.post(url, json={"body": "Mine first"}, headers=factory.headers(mod)).json()["id"]
    # the requester opened the ticket before that reply and answers now
    r = api.post(url, json={"body": "Any news?", "last_seen_comment_id": 0}, headers=factory.headers(requester))
    assert r.status_code == 409 and "new reply arrived since you opened" in r.json()["detail"]
    r = api.post(url, json={"body": "Thanks!", "last_seen_comment_id": first}, headers=factory.headers(requester))
    assert r.status_code == 201
    # own comments never make a view stale; internal notes do so only for those who can see them
    note = api.post(url, json={"body": "n", "internal": True}, headers=factory.headers(admin)).json()["id"]
    own = {"body": "More from me", "last_seen_comment_id": r.json()["id"]}
    assert api.post(url, json=own, headers=factory.headers(requester)).status_code == 201
    stale_for_mod = {"body": "x", "last_seen_comment_id": note - 1}
    assert api.post(url, json=stale_for_mod, headers=factory.headers(mod)).status_code == 409
    assert api.post(url, json={"body": "x"}, headers=factory.headers(mod)).status_code == 201  # opting out
