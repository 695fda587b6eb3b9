"""SLA display in Chromium: the queue's time left per clock, the ticket page's targets, pending pausing the
resolution clock, and the overview's attainment."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from tests.browser.conftest import shot, wait_for_jobs_to_finish
from tests.factories import PASSWORD
from ticketing_app.db import session_scope
from ticketing_app.models import User
from ticketing_app.schemas import TicketUpdate
from ticketing_app.services import tickets

pytestmark = pytest.mark.browser

LEFT = re.compile(r"\d+(h|m)( \d+m)? left")


def log_in(page, email: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/(tickets|queue|admin)/?$"))


def test_the_queue_shows_time_left_and_the_ticket_page_both_targets(new_page, factory) -> None:
    admin = factory.admin()
    moderator = factory.user("moderator", skills=["billing"], name="Moe Moderator")
    requester = factory.user(name="Rita Requester")
    fresh = factory.ticket(requester, "Where is my invoice", "Billing: how do I download last month's invoice?")
    old = factory.ticket(requester, "Charged twice last month", "Billing: two charges for one invoice.")
    with session_scope() as s:
        s.execute(text("UPDATE tickets SET created_at = now() - interval '10 days' WHERE id = :id"), {"id": old.id})
        s.execute(
            text("UPDATE tickets SET assigned_to_id = :m, assigned_at = now() WHERE id IN (:a, :b)"),
            {"m": moderator.id, "a": fresh.id, "b": old.id},
        )
    with session_scope() as s:  # the priority gives the targets (staff's choice: the AI's triage keeps it)
        actor = s.get(User, admin.id)
        tickets.update_ticket(s, actor, fresh.id, TicketUpdate(priority="low", reason="routine"))
        tickets.update_ticket(s, actor, old.id, TicketUpdate(priority="high", reason="money"))

    page = new_page()
    log_in(page, moderator.email)
    expect(page.locator(f"#queue-row-{old.id}")).to_be_visible(timeout=30_000)
    expect(page.locator(f"#sla-first-{fresh.id}")).to_contain_text(LEFT)  # 8 business hours from now
    expect(page.locator(f"#sla-resolution-{fresh.id}")).to_contain_text(LEFT)
    expect(page.locator(f"#sla-first-{old.id}")).to_contain_text(re.compile(r"overdue \d+h"))
    expect(page.locator(f"#sla-resolution-{old.id}")).to_contain_text(re.compile(r"overdue \d+h"))
    shot(page, "queue-sla")

    page.locator(f"#queue-row-{old.id}").get_by_role("link").first.click()
    page.wait_for_url(re.compile(rf".*/tickets/{old.id}/?$"))
    panel = page.locator("#sla-panel")
    expect(panel).to_contain_text("First response")
    expect(panel).to_contain_text("Resolution")
    expect(page.locator("#sla-first")).to_contain_text("overdue")
    page.get_by_role("button", name="Wait on requester").click()
    expect(page.locator("#sla-resolution")).to_contain_text("paused")
    expect(page.locator("#sla-first")).to_contain_text("overdue")  # the first response does not pause
    shot(page, "ticket-sla-pending")

    boss = new_page()
    log_in(boss, admin.email)
    boss.goto("/admin")
    expect(boss.locator("#sla-attainment-high")).to_contain_text("0% (0 of 1)")  # the old one missed both
    wait_for_jobs_to_finish()
