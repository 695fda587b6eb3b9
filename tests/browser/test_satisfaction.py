"""Satisfaction in the browser: the resolved mail's link opens a page that records on its button only, and the
requester can rate on the ticket page; staff see the rating."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from tests.browser.test_journeys import log_in
from ticketing_app.db import session_scope
from ticketing_app.models import EmailMessage, SatisfactionRating, Ticket

pytestmark = pytest.mark.browser


def _resolve(ticket_id: int, moderator_id: int) -> None:
    with session_scope() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket_id).values(assigned_to_id=moderator_id))


def test_rate_from_the_mail_link_and_on_the_ticket_page(new_page, factory, app_url):
    factory.admin()
    mod = factory.user("moderator", name="Moe Moderator")
    requester = factory.user(name="Rita Requester")
    first = factory.ticket(requester, "Printer jams", "Page 2 always jams.")
    second = factory.ticket(requester, "Scanner slow", "Takes minutes per page.")
    for ticket in (first, second):
        _resolve(ticket.id, mod.id)
        r = httpx.patch(f"{app_url}/api/tickets/{ticket.id}", json={"status": "resolved"}, headers=factory.headers(mod))
        assert r.status_code == 200, r.text

    with session_scope() as s:
        text = s.scalars(
            select(EmailMessage.body_text).where(
                EmailMessage.ticket_id == first.id, EmailMessage.kind == "ticket_resolved"
            )
        ).one()
    good = re.search(r"Good: (\S+)", text).group(1)
    link = app_url + good[good.index("/api/rate") :]

    page = new_page()
    page.goto(link)  # no log-in needed; opening the page records nothing
    expect(page.get_by_role("heading", name="Rate your ticket")).to_be_visible()
    expect(page.locator("input[value=good]")).to_be_checked()
    with session_scope() as s:
        assert s.get(SatisfactionRating, first.id) is None
    page.fill("#comment", "Quick and friendly")
    page.get_by_role("button", name="Send my rating").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()

    rita = new_page()
    log_in(rita, requester.email)
    rita.get_by_role("link", name="Scanner slow").click()
    expect(rita.locator("#rate-ticket")).to_be_visible()
    rita.locator("#rating-bad").check()
    rita.get_by_role("button", name="Send my rating").click()
    expect(rita.get_by_text("Thank you for your rating.")).to_be_visible()
    expect(rita.locator("#rating-given")).to_contain_text("Rated bad")

    moe = new_page()
    log_in(moe, mod.email)
    moe.goto(f"/tickets/{first.id}")
    expect(moe.locator("#rating-given")).to_contain_text("Rated good")
    expect(moe.locator("#rating-given")).to_contain_text("Quick and friendly")
