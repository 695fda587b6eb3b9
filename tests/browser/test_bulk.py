"""Queue work in bulk in the browser: tick tickets, change them at once, save the filter, use it again and
delete it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, func, select, update

from tests.browser.test_journeys import log_in
from ticketing_app.db import session_scope
from ticketing_app.models import Job, SavedFilter, Ticket

pytestmark = pytest.mark.browser


def test_moderator_changes_several_tickets_at_once_and_saves_a_filter(new_page, factory):
    factory.admin()
    mod = factory.user("moderator", name="Moe Moderator")
    requester = factory.user()
    ids = [factory.ticket(requester, f"Bulk ticket {i}", "Needs work.").id for i in range(3)]
    with session_scope() as s:  # Moe's tickets, with no triage or routing left to move them
        s.execute(delete(Job).where(Job.status == "queued"))
        s.execute(
            update(Ticket)
            .where(Ticket.id.in_(ids))
            .values(assigned_to_id=mod.id, priority="medium", triage_status="done")
        )

    page = new_page()
    log_in(page, mod.email)
    for ticket_id in ids:
        expect(page.locator(f"#queue-row-{ticket_id}")).to_be_visible(timeout=10_000)
    page.locator(f"#select-{ids[0]}").click()
    page.locator(f"#select-{ids[1]}").click()
    expect(page.locator("#bulk-bar")).to_contain_text("2 selected")
    page.select_option("select[name=status]", "in_progress")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.get_by_text("Changed 2 tickets.")).to_be_visible()
    with session_scope() as s:
        statuses = dict(s.execute(select(Ticket.id, Ticket.status).where(Ticket.id.in_(ids))).all())
    assert statuses == {ids[0]: "in_progress", ids[1]: "in_progress", ids[2]: "open"}
    expect(page.locator("#bulk-bar")).to_have_count(0)  # nothing ticked any more

    page.get_by_role("combobox", name="Status", exact=True).click()
    page.get_by_role("option", name="in_progress").click()
    expect(page.locator(f"#queue-row-{ids[2]}")).to_have_count(0)
    page.fill("input[name=name]", "Working on")
    page.get_by_role("button", name="Save filter").click()
    expect(page.get_by_text("Filter saved as 'Working on'.")).to_be_visible()
    page.get_by_role("combobox", name="Status", exact=True).click()
    page.get_by_role("option", name="active").click()
    expect(page.locator(f"#queue-row-{ids[2]}")).to_be_visible(timeout=10_000)  # back to the default view
    page.select_option("#saved-filter-picker", label="Working on")
    expect(page.locator(f"#queue-row-{ids[2]}")).to_have_count(0)
    expect(page.locator(f"#queue-row-{ids[0]}")).to_be_visible()

    page.get_by_role("button", name="Delete saved filter Working on").click()
    expect(page.get_by_text("Filter 'Working on' deleted.")).to_be_visible()
    expect(page.locator("#saved-filter-picker")).to_have_count(0)  # no saved filter left to pick
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(SavedFilter)) == 0
