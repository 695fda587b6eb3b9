"""Markup in titles, descriptions, comments, names and AI notes is inert text on every page (Chromium)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.security.conftest import World, log_in, settle
from tests.security.test_injection import IMG, SCRIPT
from ticketing_app.db import session_scope
from ticketing_app.models import Ticket, User
from ticketing_app.schemas import CommentCreate
from ticketing_app.services import tickets

pytestmark = pytest.mark.browser

PAYLOAD = f"{IMG} {SCRIPT}"


def _assert_inert(page) -> None:
    """The payloads did not run and did not become elements."""
    page.wait_for_timeout(300)  # an onerror handler fires as soon as the broken image is tried
    assert page.evaluate("typeof window.__xss") == "undefined", f"markup ran on {page.url}"
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("script", has_text="window.__xss").count() == 0
    assert "<img src=x onerror" not in page.content()  # only the escaped form (&lt;img ...) is in the HTML


def test_markup_everywhere_is_shown_as_text(new_page, world: World):
    admin, requester, moderator = world.user("admin"), world.user("user"), world.user("assigned_moderator")
    with session_scope() as s:
        s.get(User, requester.id).name = f"Rita {IMG}"
        t = s.get(Ticket, world.ticket_id)
        t.title = f"Help {PAYLOAD}"
        t.description = f"Line one {IMG}\nLine two {SCRIPT}"
        # what a misbehaving AI could return; marked done so the server's triage does not replace it
        t.summary, t.helpful_notes = f"AI summary {IMG}", f"- note {SCRIPT}\n- note {IMG}"
        t.assignment_reason, t.category, t.priority, t.triage_status = f"why {IMG}", "bug", "medium", "done"
        tickets.add_comment(s, s.get(User, requester.id), t.id, CommentCreate(body=f"Comment {PAYLOAD}"))
        tickets.add_comment(s, s.get(User, moderator.id), t.id, CommentCreate(body=f"Internal {SCRIPT}", internal=True))
    settle()

    dialogs: list[str] = []
    pages = {}
    for role, person in (("requester", requester), ("moderator", moderator), ("admin", admin)):
        page = new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        log_in(page, person.email)
        pages[role] = page

    page = pages["requester"]
    page.goto(f"/tickets/{world.ticket_id}")
    expect(page.get_by_role("heading", name=f"Help {PAYLOAD}")).to_be_visible()
    expect(page.locator("#ai-summary")).to_have_text(f"AI summary {IMG}")
    expect(page.get_by_text(f"Comment {PAYLOAD}")).to_be_visible()
    body = page.inner_text("body")
    assert f"Line one {IMG}" in body and f"Line two {SCRIPT}" in body
    assert "Internal" not in body and "note" not in body  # staff-only text stays with staff
    _assert_inert(page)
    page.goto("/tickets")
    expect(page.get_by_text(f"Help {PAYLOAD}")).to_be_visible()
    _assert_inert(page)

    page = pages["moderator"]
    page.goto(f"/tickets/{world.ticket_id}")
    expect(page.locator("#ai-notes")).to_contain_text(f"- note {SCRIPT}")
    expect(page.locator("#ai-notes")).to_contain_text(f"- note {IMG}")
    expect(page.get_by_text(f"Internal {SCRIPT}")).to_be_visible()
    expect(page.get_by_text(f"Rita {IMG}").first).to_be_visible()
    assert f"why {IMG}" in page.inner_text("body")
    _assert_inert(page)
    page.goto("/queue")
    expect(page.get_by_text(f"Help {PAYLOAD}").first).to_be_visible()
    _assert_inert(page)

    page = pages["admin"]
    page.goto("/admin/users")
    expect(page.get_by_text(f"Rita {IMG}").first).to_be_visible()
    _assert_inert(page)
    page.goto("/admin")
    expect(page.locator("#not-allowed")).to_have_count(0)
    _assert_inert(page)
    page.goto(f"/tickets/{world.ticket_id}")
    expect(page.locator("#ai-notes")).to_contain_text(f"- note {SCRIPT}")
    _assert_inert(page)

    assert dialogs == []
