"""Collision detection in the browser: staff on one ticket see each other typing, and a reply written on a
view that a newer reply has overtaken is held back once with a warning."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, update

from tests.browser.test_journeys import log_in
from ticketing_app.db import session_scope
from ticketing_app.models import Job, Ticket

pytestmark = pytest.mark.browser


def test_staff_see_who_is_typing_and_a_stale_reply_warns_first(new_page, factory):
    admin = factory.admin()
    mod = factory.user("moderator", name="Moe Moderator")
    requester = factory.user(name="Rita Requester")
    ticket = factory.ticket(requester, "Printer on fire", "It is on fire.")
    with session_scope() as s:  # worked by Moe, with no triage or routing left to move it elsewhere
        s.execute(delete(Job).where(Job.status == "queued", Job.payload["ticket_id"].as_integer() == ticket.id))
        s.execute(update(Ticket).where(Ticket.id == ticket.id).values(assigned_to_id=mod.id, triage_status="done"))

    boss, moe = new_page(), new_page()
    for page, who in ((boss, admin), (moe, mod)):
        log_in(page, who.email)
        page.goto(f"/tickets/{ticket.id}")
        expect(page.locator("#reply-body")).to_be_visible()

    expect(boss.locator("#viewers")).to_contain_text("Moe Moderator", timeout=5_000)  # within a couple of seconds
    expect(moe.locator("#viewers")).to_contain_text("Ada Admin", timeout=5_000)
    moe.locator("#reply-body").press_sequentially("We are sending the fire brigade", delay=50)
    expect(boss.locator("#viewers")).to_contain_text("Moe Moderator is typing a reply", timeout=5_000)

    # The admin answers first; Moe's page shows it live, but Moe had not seen it when he started typing.
    boss.fill("#reply-body", "Evacuate the office first.")
    boss.get_by_role("button", name="Send").click()
    expect(boss.get_by_text("Reply sent.")).to_be_visible()
    expect(moe.get_by_text("Evacuate the office first.")).to_be_visible(timeout=5_000)
    moe.get_by_role("button", name="Send").click()
    expect(moe.get_by_role("alert")).to_contain_text("A new reply arrived since you opened this ticket")
    expect(moe.locator("#reply-body")).to_have_value("We are sending the fire brigade")  # nothing lost
    moe.get_by_role("button", name="Send").click()  # read it: sending again goes through
    expect(moe.get_by_text("Reply sent.")).to_be_visible()
    expect(boss.get_by_text("We are sending the fire brigade")).to_be_visible(timeout=5_000)

    # The requester sees neither who is on the ticket nor anyone typing.
    rita = new_page()
    log_in(rita, requester.email)
    rita.get_by_role("link", name="Printer on fire").click()
    expect(rita.get_by_text("We are sending the fire brigade")).to_be_visible()
    rita.wait_for_timeout(2500)
    expect(rita.locator("#viewers")).not_to_contain_text("Moderator")
