"""Who is mailed about what (replies and status changes both ways), preferences by REST, one-click unsubscribe."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import Factory
from ticketing_app.db import session_scope
from ticketing_app.mail import tokens
from ticketing_app.models import EmailMessage, Ticket, User
from ticketing_app.schemas import CommentCreate, TicketUpdate
from ticketing_app.services import attachments, notifications
from ticketing_app.services import tickets as tickets_service

WELCOME = "welcome"


def mails(kind: str | None = None) -> list[tuple[str, str]]:
    """(kind, recipient) of every queued mail but the welcome ones, oldest first."""
    with session_scope() as s:
        rows = s.scalars(select(EmailMessage).where(EmailMessage.kind != WELCOME).order_by(EmailMessage.id)).all()
        return [(r.kind, r.to_address) for r in rows if kind is None or r.kind == kind]


def mail_rows(kind: str) -> list[EmailMessage]:
    with session_scope() as s:
        rows = s.scalars(select(EmailMessage).where(EmailMessage.kind == kind).order_by(EmailMessage.id)).all()
        s.expunge_all()
        return list(rows)


def clear_mails() -> None:
    with session_scope() as s:
        s.execute(EmailMessage.__table__.delete())


def as_user(user: User, fn):
    with session_scope() as s:
        return fn(s, s.get(User, user.id))


def comment(user: User, ticket_id: int, body: str, *, internal: bool = False):
    return as_user(
        user, lambda s, u: tickets_service.add_comment(s, u, ticket_id, CommentCreate(body=body, internal=internal)).id
    )


def update(user: User, ticket_id: int, **changes) -> None:
    as_user(user, lambda s, u: tickets_service.update_ticket(s, u, ticket_id, TicketUpdate(**changes)))


@pytest.fixture()
def people(factory: Factory):
    """An admin, a moderator the ticket is assigned to (by the admin), and its requester; no mails yet."""
    admin = factory.admin()
    mod = factory.user("moderator", skills=["billing"])
    requester = factory.user()
    ticket = factory.ticket(requester, "Charged twice", "My card was charged twice.")
    update(admin, ticket.id, assignee_id=mod.id, reason="billing expert")
    assert mails() == [("ticket_assigned", mod.email)]
    clear_mails()
    return admin, mod, requester, ticket


def test_a_public_staff_reply_mails_the_requester_with_the_reply_only(people) -> None:
    admin, mod, requester, ticket = people
    comment(mod, ticket.id, "First line\nSecond line")
    assert mails() == [("ticket_reply", requester.email)]
    [row] = mail_rows("ticket_reply")
    assert "First line\nSecond line" in row.body_text
    assert "First line<br>\nSecond line" in row.body_html
    assert ticket.reference in row.subject and "Charged twice" in row.subject
    assert f"/tickets/{ticket.id}" in row.body_text
    # an admin who does not work the ticket answering publicly is staff too
    comment(admin, ticket.id, "Admin here")
    assert mails("ticket_reply") == [("ticket_reply", requester.email)] * 2


def test_internal_notes_never_reach_anyone_by_mail(people) -> None:
    admin, mod, _, ticket = people
    comment(mod, ticket.id, "the customer is a known abuser", internal=True)
    comment(admin, ticket.id, "agreed", internal=True)
    assert mails() == []


def test_a_requester_reply_mails_the_assignee_not_the_requester(people) -> None:
    _, mod, requester, ticket = people
    comment(requester, ticket.id, "Any news?")
    assert mails() == [("requester_reply", mod.email)]
    [row] = mail_rows("requester_reply")
    assert "Any news?" in row.body_text and requester.name in row.body_text


def test_a_reply_on_an_unassigned_ticket_mails_nobody(factory: Factory) -> None:
    requester = factory.user()
    ticket = factory.ticket(requester)
    comment(requester, ticket.id, "hello?")
    assert mails() == []


def test_status_changes_mail_the_requester(people) -> None:
    _, mod, requester, ticket = people
    update(mod, ticket.id, status="in_progress")
    update(mod, ticket.id, status="resolved")
    update(mod, ticket.id, status="closed")
    update(mod, ticket.id, status="open")  # reopened by staff: the requester hears of it, the actor does not
    assert mails() == [
        ("ticket_status", requester.email),
        ("ticket_resolved", requester.email),
        ("ticket_status", requester.email),
        ("ticket_status", requester.email),
    ]
    subjects = [row.subject for row in mail_rows("ticket_status")]
    assert [s.split("]")[1].split(":")[0].strip() for s in subjects] == ["In progress", "Closed", "Reopened"]


def test_a_reopen_by_the_requester_mails_the_assignee(people) -> None:
    admin, mod, requester, ticket = people
    update(mod, ticket.id, status="resolved")
    clear_mails()
    update(requester, ticket.id, status="open")
    assert mails() == [("ticket_reopened", mod.email)]
    # an admin reopening it tells both the requester and the assignee
    update(mod, ticket.id, status="closed")
    clear_mails()
    update(admin, ticket.id, status="open")
    assert sorted(mails()) == [("ticket_reopened", mod.email), ("ticket_status", requester.email)]


def test_nobody_is_mailed_about_their_own_action(factory: Factory) -> None:
    admin = factory.admin()
    own = factory.ticket(admin, "Printer", "My own ticket")
    update(admin, own.id, assignee_id=admin.id)  # assigns themself
    update(admin, own.id, status="in_progress")
    comment(admin, own.id, "noting my progress")
    update(admin, own.id, status="resolved")
    assert mails() == []
    # a requester closing their own resolved ticket is not told either
    requester = factory.user()
    ticket = factory.ticket(requester)
    update(admin, ticket.id, status="resolved")
    clear_mails()
    update(requester, ticket.id, status="closed")
    assert mails() == []


def test_a_muted_kind_is_not_queued_and_others_still_are(people, factory: Factory) -> None:
    _, mod, requester, ticket = people
    with session_scope() as s:
        notifications.set_preferences(s, s.get(User, requester.id), {"ticket_reply": False})
    comment(mod, ticket.id, "muted for you")
    update(mod, ticket.id, status="in_progress")
    assert mails() == [("ticket_status", requester.email)]
    with session_scope() as s:
        notifications.set_preferences(s, s.get(User, requester.id), {"ticket_reply": True})
    comment(mod, ticket.id, "and back")
    assert mails("ticket_reply") == [("ticket_reply", requester.email)]


def test_a_reply_mail_lists_its_attachments_as_links_to_the_ticket_page(people) -> None:
    _, mod, requester, ticket = people

    def reply_with_file(s, actor):
        added = tickets_service.add_comment(s, actor, ticket.id, CommentCreate(body="See the log"), notify=False)
        t = s.get(Ticket, ticket.id)
        stored = attachments.store(s, actor, t, filename='<b>"error".log', data=b"boom\n", comment=added)
        notifications.comment_added(s, actor, t, added)
        return stored.id

    attachment_id = as_user(mod, reply_with_file)
    assert mails() == [("ticket_reply", requester.email)]
    [row] = mail_rows("ticket_reply")
    link = f"/tickets/{ticket.id}#attachment-{attachment_id}"
    assert link in row.body_text and "'error'.log" in row.body_text
    assert link in row.body_html and "&lt;b&gt;" in row.body_html and "<b>'" not in row.body_html


def test_ticket_mails_carry_reply_and_thread_headers_and_notifications_one_click_unsubscribe(
    people, factory: Factory
) -> None:
    _, mod, requester, ticket = people
    comment(mod, ticket.id, "hi")
    [row] = mail_rows("ticket_reply")
    target = tokens.parse_reply_address(row.headers["Reply-To"])
    assert target == tokens.ReplyTarget(ticket.id, requester.id)
    assert tokens.read_reply_token(row.headers["X-Helpdesk-Token"]) == target
    assert row.headers["In-Reply-To"] == row.headers["References"] == notifications.thread_root_id(ticket.id)
    assert row.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = row.headers["List-Unsubscribe"].strip("<>")
    assert url.startswith("http://localhost:3000/api/unsubscribe?token=")
    assert tokens.read_unsubscribe_token(url.split("token=")[1]) == (requester.id, "ticket_reply")
    assert url in row.body_text  # the body links to the same confirm page
    # account mails are always sent: no unsubscribe header
    newcomer = factory.user()
    [welcome] = [r for r in mail_rows(WELCOME) if r.to_address == newcomer.email]
    assert "List-Unsubscribe" not in welcome.headers and "Reply-To" not in welcome.headers


# ----- preferences by REST -----


def test_each_role_sees_and_sets_the_kinds_it_can_receive(api, factory: Factory) -> None:
    admin = factory.admin()
    mod = factory.user("moderator")
    user = factory.user()
    requester_kinds = {"ticket_received", "ticket_reply", "ticket_status", "ticket_resolved", "ticket_merged"}
    staff_kinds = requester_kinds | {"ticket_assigned", "requester_reply", "ticket_reopened", "sla_warning"}
    admin_kinds = staff_kinds | {"admin_digest", "sla_breached"}
    for person, kinds in ((user, requester_kinds), (mod, staff_kinds), (admin, admin_kinds)):
        got = api.get("/api/me/notifications", headers=factory.headers(person))
        assert got.status_code == 200 and got.json() == dict.fromkeys(kinds, True)
        assert "welcome" not in got.json()

    put = api.put("/api/me/notifications", json={"ticket_reply": False}, headers=factory.headers(user))
    assert put.status_code == 200 and put.json()["ticket_reply"] is False and put.json()["ticket_status"] is True
    assert api.get("/api/me/notifications", headers=factory.headers(user)).json()["ticket_reply"] is False
    with session_scope() as s:
        assert s.get(User, user.id).muted_email_kinds == ["ticket_reply"]

    refused = api.put("/api/me/notifications", json={"admin_digest": False}, headers=factory.headers(user))
    assert refused.status_code == 422 and "Unknown notification kind: admin_digest" in refused.json()["detail"]
    assert api.put("/api/me/notifications", json={"welcome": False}, headers=factory.headers(admin)).status_code == 422
    not_bool = api.put("/api/me/notifications", json={"ticket_reply": "no"}, headers=factory.headers(user))
    assert not_bool.status_code == 422
    assert api.put("/api/me/notifications", json=["ticket_reply"], headers=factory.headers(user)).status_code == 422
    assert api.get("/api/me/notifications").status_code == 401
    ok = api.put("/api/me/notifications", json={"admin_digest": False}, headers=factory.headers(admin))
    assert ok.status_code == 200 and ok.json()["admin_digest"] is False


# ----- one-click unsubscribe -----


def test_unsubscribe_post_without_log_in_mutes_exactly_that_kind(api, factory: Factory) -> None:
    user = factory.user()
    token = tokens.unsubscribe_token(user.id, "ticket_status")
    answer = api.post(
        f"/api/unsubscribe?token={token}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["kind"] == "ticket_status"
    with session_scope() as s:
        assert s.get(User, user.id).muted_email_kinds == ["ticket_status"]
    again = api.post(f"/api/unsubscribe?token={token}")  # idempotent
    assert again.status_code == 200
    prefs = api.get("/api/me/notifications", headers=factory.headers(user)).json()
    assert [kind for kind, on in prefs.items() if not on] == ["ticket_status"]
    # from the confirm page's form: an HTML answer
    page = api.post(
        f"/api/unsubscribe?token={tokens.unsubscribe_token(user.id, 'ticket_reply')}", headers={"Accept": "text/html"}
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "no longer get" in page.text


def test_unsubscribe_get_only_shows_a_confirm_page(api, factory: Factory) -> None:
    user = factory.user(name="Eve <script>x</script>", email="eve@example.com")
    token = tokens.unsubscribe_token(user.id, "ticket_reply")
    page = api.get(f"/api/unsubscribe?token={token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<form method="post"' in page.text and f"/api/unsubscribe?token={token}" in page.text
    assert "eve@example.com" in page.text and "<script" not in page.text
    with session_scope() as s:
        assert s.get(User, user.id).muted_email_kinds == []


def test_the_unsubscribe_routes_have_plain_operation_ids(api) -> None:
    """The OpenAPI operation ids come from the handlers' names: clients generated from the schema use them."""
    operations = api.get("/api/openapi.json").json()["paths"]["/api/unsubscribe"]
    assert operations["get"]["operationId"] == "unsubscribe_page_api_unsubscribe_get"
    assert operations["post"]["operationId"] == "unsubscribe_api_unsubscribe_post"


def test_forged_or_altered_unsubscribe_tokens_are_refused(api, factory: Factory) -> None:
    user = factory.user()
    genuine = tokens.unsubscribe_token(user.id, "ticket_reply")
    altered = genuine[:-1] + ("a" if genuine[-1] != "a" else "b")
    reply_token = tokens.reply_token(1, user.id)  # a valid token of another purpose
    welcome = tokens.unsubscribe_token(user.id, "welcome")  # account mails cannot be turned off
    for bad in (altered, reply_token, welcome, "", "not-a-token", genuine[:20]):
        answer = api.post(f"/api/unsubscribe?token={bad}")
        assert answer.status_code == 400, bad
        assert "unsubscribe link is not valid" in answer.json()["detail"]
        assert api.get(f"/api/unsubscribe?token={bad}").status_code == 400
    assert api.post("/api/unsubscribe").status_code == 400
    with session_scope() as s:
        assert s.get(User, user.id).muted_email_kinds == []


def test_two_tabs_saving_at_once_keep_both_changes(factory: Factory) -> None:
    user = factory.user()
    with session_scope() as first, session_scope() as second:
        one, two = first.get(User, user.id), second.get(User, user.id)  # both read before either saves
        notifications.set_preferences(first, one, {"ticket_reply": False})
        first.commit()
        notifications.set_preferences(second, two, {"ticket_status": False})
    with session_scope() as s:
        assert s.get(User, user.id).muted_email_kinds == ["ticket_reply", "ticket_status"]
