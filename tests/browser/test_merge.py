"""Merging a duplicate from its ticket page: find the original by number, confirm, see the links both ways."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, func, select, update

from tests.browser.test_journeys import goto_signed_in, log_in
from ticketing_app.db import session_scope
from ticketing_app.models import EmailMessage, Job, Ticket

pytestmark = pytest.mark.browser


def test_moderator_merges_a_duplicate_from_the_ticket_page(new_page, factory):
    factory.admin()
    mod = factory.user("moderator", name="Moe Moderator")
    alice, bob = factory.user(name="Alice Original"), factory.user(name="Bob Duplicate")
    original = factory.ticket(alice, "Printer on floor 3 jams", "Every page jams.").id
    duplicate = factory.ticket(bob, "Floor 3 printer broken", "It eats paper <b>daily</b>.").id
    with session_scope() as s:  # both Moe's, with no triage or routing left to move them
        s.execute(delete(Job).where(Job.status == "queued"))
        s.execute(
            update(Ticket)
            .where(Ticket.id.in_([original, duplicate]))
            .values(assigned_to_id=mod.id, priority="medium", triage_status="done")
        )
        number = s.get(Ticket, original).reference

    page = new_page()
    log_in(page, mod.email)
    goto_signed_in(page, f"/tickets/{duplicate}")
    expect(page.get_by_role("heading", name="Floor 3 printer broken")).to_be_visible()
    page.fill("#merge-into", number.lower())
    page.locator("#merge-find").click()
    expect(page.locator("#merge-confirm-text")).to_contain_text(f"{number}: Printer on floor 3 jams")
    page.fill("input[name=note]", "Same printer, tracked there.")
    page.locator("#merge-confirm").click()

    expect(page.get_by_text(f"Merged into {number}.")).to_be_visible()
    link = page.locator("#merged-into-link")
    expect(link).to_have_text(number)
    expect(page.get_by_text("Same printer, tracked there.")).to_be_visible()  # the public closing comment
    with session_scope() as s:
        assert s.get(Ticket, duplicate).merged_into_id == original
        assert s.scalar(select(func.count()).where(EmailMessage.kind == "ticket_merged")) == 1

    link.click()
    expect(page).to_have_url(f"{page.url.split('/tickets/')[0]}/tickets/{original}")
    expect(page.get_by_role("heading", name="Printer on floor 3 jams")).to_be_visible()
    # the duplicate's description, as text (no markup), and the timeline's "merged in" line with its link
    expect(page.get_by_text("It eats paper <b>daily</b>.")).to_be_visible()
    expect(page.get_by_role("link", name="TCK-1002")).to_be_visible()
    expect(page.locator("#merge-into")).to_be_visible()  # the original itself can still be merged elsewhere

    # Bob, the duplicate's requester, now follows the original
    bob_page = new_page()
    log_in(bob_page, bob.email)
    goto_signed_in(bob_page, f"/tickets/{original}")
    expect(bob_page.get_by_role("heading", name="Printer on floor 3 jams")).to_be_visible()
    expect(bob_page.locator("#merge-into")).to_have_count(0)
