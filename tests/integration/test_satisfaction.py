"""Satisfaction: the resolved mail's signed links open a page that records only on a click; the requester
rates by REST or on the page; the overview counts per moderator and category."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import select, update

from ticketing_app.db import session_scope
from ticketing_app.models import EmailMessage, SatisfactionRating, Ticket, User
from ticketing_app.services import notifications, reports


def _resolved_ticket(api, factory, title: str = "Broken <b>printer</b>"):
    admin = factory.admin()
    mod = factory.user("moderator", name="Mo Derator")
    requester = factory.user(name="Rita")
    ticket = factory.ticket(requester, title)
    with session_scope() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket.id).values(assigned_to_id=mod.id, category="hardware"))
    r = api.patch(f"/api/tickets/{ticket.id}", json={"status": "resolved"}, headers=factory.headers(mod))
    assert r.status_code == 200, r.text
    return admin, mod, requester, ticket


def _rating_links(ticket_id: int) -> tuple[str, str]:
    with session_scope() as s:
        mail = s.scalars(
            select(EmailMessage).where(EmailMessage.ticket_id == ticket_id, EmailMessage.kind == "ticket_resolved")
        ).one()
        text, html_body = mail.body_text, mail.body_html
    good = re.search(r"Good: (\S+)", text).group(1)
    bad = re.search(r"Bad: (\S+)", text).group(1)
    assert good.replace("&", "&amp;") in html_body and bad.replace("&", "&amp;") in html_body
    return good, bad


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_mail_link_page_records_only_on_post(api, factory) -> None:
    _, _, requester, ticket = _resolved_ticket(api, factory)
    good, bad = _rating_links(ticket.id)
    page = api.get(_path(bad))  # a mail scanner, or the person opening the link
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Broken &lt;b&gt;printer&lt;/b&gt;" in page.text and "<b>printer" not in page.text
    assert re.search(r'value="bad" required checked', page.text)
    with session_scope() as s:
        assert s.get(SatisfactionRating, ticket.id) is None  # nothing recorded by a GET
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    r = api.post("/api/rate", data={"token": token, "rating": "bad", "comment": "Took <i>ages</i>"})
    assert r.status_code == 200 and "Thank you" in r.text
    detail = api.get(f"/api/tickets/{ticket.id}", headers=factory.headers(requester)).json()
    assert detail["satisfaction"]["rating"] == "bad" and detail["satisfaction"]["comment"] == "Took <i>ages</i>"
    r = api.post("/api/rate", data={"token": token, "rating": "good"})  # changed their mind
    assert r.status_code == 200
    assert api.get(f"/api/tickets/{ticket.id}", headers=factory.headers(requester)).json()["satisfaction"] == {
        "rating": "good",
        "comment": None,
        "rated_at": api.get(f"/api/tickets/{ticket.id}", headers=factory.headers(requester)).json()["satisfaction"][
            "rated_at"
        ],
    }
    assert api.get(_path(good)).status_code == 200


def test_forged_or_foreign_tokens_and_open_tickets_are_refused(api, factory) -> None:
    _, mod, requester, ticket = _resolved_ticket(api, factory)
    assert api.get("/api/rate?token=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").status_code == 400
    r = api.post("/api/rate", data={"token": "nonsense", "rating": "good"})
    assert r.status_code == 400 and "not valid" in r.text
    # a token for someone who is not the requester (e.g. the moderator) names the ticket but not its requester
    foreign = notifications.rating_urls(ticket.id, mod.id)[0]
    assert api.get(_path(foreign)).status_code == 400
    # an unsubscribe token is no rating token
    unsub = notifications.unsubscribe_url(requester.id, "ticket_reply")
    assert api.get(_path(unsub).replace("/api/unsubscribe", "/api/rate")).status_code == 400
    good, _ = _rating_links(ticket.id)
    token = re.search(r"token=([^&]+)", good).group(1)
    assert api.post("/api/rate", data={"token": token, "rating": "meh"}).status_code == 422
    api.patch(f"/api/tickets/{ticket.id}", json={"status": "open"}, headers=factory.headers(requester))
    r = api.post("/api/rate", data={"token": token, "rating": "good"})
    assert r.status_code == 422 and "open again" in r.text
    with session_scope() as s:
        assert s.get(SatisfactionRating, ticket.id) is None


def test_rest_rating_only_by_the_requester(api, factory) -> None:
    admin, mod, requester, ticket = _resolved_ticket(api, factory)
    url = f"/api/tickets/{ticket.id}/satisfaction"
    assert api.put(url, json={"rating": "good"}, headers=factory.headers(mod)).status_code == 403
    assert api.put(url, json={"rating": "good"}, headers=factory.headers(factory.user())).status_code == 404
    assert api.put(url, json={"rating": "great"}, headers=factory.headers(requester)).status_code == 422
    r = api.put(url, json={"rating": "good", "comment": "Fast!"}, headers=factory.headers(requester))
    assert r.status_code == 200 and r.json()["rating"] == "good"
    listed = api.get("/api/tickets", headers=factory.headers(admin)).json()["items"]
    assert [t["satisfaction"]["rating"] for t in listed if t["id"] == ticket.id] == ["good"]


def test_overview_counts_per_moderator_and_category(api, factory) -> None:
    admin, mod, requester, ticket = _resolved_ticket(api, factory)
    api.put(f"/api/tickets/{ticket.id}/satisfaction", json={"rating": "bad"}, headers=factory.headers(requester))
    second = factory.ticket(requester, "Second")
    with session_scope() as s:
        s.execute(
            update(Ticket)
            .where(Ticket.id == second.id)
            .values(assigned_to_id=mod.id, category="billing", status="resolved")
        )
    api.put(f"/api/tickets/{second.id}/satisfaction", json={"rating": "good"}, headers=factory.headers(requester))
    with session_scope() as s:  # reassigned later: the rating stays with who worked it
        s.execute(update(Ticket).where(Ticket.id == ticket.id).values(assigned_to_id=admin.id))
        overview = reports.admin_overview(s, s.get(User, admin.id)).satisfaction
    assert (overview["good"], overview["bad"], overview["share_good"]) == (1, 1, 0.5)
    assert overview["by_moderator"] == [{"name": "Mo Derator", "good": 1, "bad": 1, "share_good": 0.5}]
    assert {c["category"]: (c["good"], c["bad"]) for c in overview["by_category"]} == {
        "billing": (1, 0),
        "hardware": (0, 1),
    }
