"""Similar tickets in the browser: staff see an earlier resolved ticket like this one, and a suggested reply from
it fills the reply box (nothing is sent until they press Send)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from tests.browser.conftest import shot, wait_for_jobs_to_finish
from tests.browser.test_journeys import log_in
from ticketing_app.db import session_scope
from ticketing_app.models import Comment, Ticket, TicketEmbedding

pytestmark = pytest.mark.browser

REPLY = (
    "Hi Ann,\n\nThe reset mail comes from no-reply@example.com: look in the <b>spam</b> folder.\n\nBest regards,\nAda"
)


def _embedded(ticket_id: int) -> bool:
    with session_scope() as s:
        return s.scalar(select(TicketEmbedding.ticket_id).where(TicketEmbedding.ticket_id == ticket_id)) is not None


def test_staff_see_similar_tickets_and_fill_the_reply_box(new_page, factory):
    admin = factory.admin()
    ann = factory.user(name="Ann Asker")
    earlier = factory.ticket(ann, "Password reset e-mail never arrives", "I asked for a reset but no e-mail came.")
    wait_for_jobs_to_finish()
    with session_scope() as s:
        s.execute(update(Ticket).where(Ticket.id == earlier.id).values(status="resolved"))
        s.add(Comment(ticket_id=earlier.id, author_id=admin.id, body=REPLY, internal=False))
    ticket = factory.ticket(ann, "No password reset mail", "I requested a password reset twice and got no mail.")
    wait_for_jobs_to_finish()
    assert _embedded(earlier.id) and _embedded(ticket.id)  # by the app's own triage job

    staff = new_page()
    log_in(staff, admin.email)
    staff.goto(f"/tickets/{ticket.id}")
    panel = staff.locator("#similar-tickets")
    expect(panel).to_contain_text("Password reset e-mail never arrives")
    expect(panel).to_contain_text("% similar")
    # The resolution is shown as text: the reply's markup is not HTML on the page.
    expect(panel).to_contain_text("look in the <b>spam</b> folder")
    expect(panel.locator("b")).to_have_count(0)
    expect(panel.get_by_role("link")).to_have_attribute("href", re.compile(rf"/tickets/{earlier.id}$"))

    staff.locator("#suggest-reply").click()
    expect(staff.locator("#reply-body")).to_have_value(re.compile(r"^Hello Ann,\n\nThe reset mail comes from"))
    expect(staff.locator("#reply-body")).to_have_value(re.compile(r"Best regards,\nAda Admin$"))
    expect(staff.locator("#draft-note")).to_contain_text(f"TCK-{earlier.number}")
    shot(staff, "similar-tickets")
    with session_scope() as s:  # suggested, not sent
        assert s.scalar(select(Comment.id).where(Comment.ticket_id == ticket.id)) is None
    wait_for_jobs_to_finish()  # the Gemini draft job the suggestion queued (the fake answers it)

    # "Merge into this" on the similar ticket starts the merge's confirm step with it as the target.
    panel.get_by_role("button", name=f"Merge this ticket into TCK-{earlier.number}").click()
    expect(staff.locator("#merge-confirm-text")).to_contain_text(f"TCK-{earlier.number}")
    expect(staff.locator("#merge-confirm-text")).to_contain_text("Password reset e-mail never arrives")
    with session_scope() as s:  # asked, not done
        assert s.get_one(Ticket, ticket.id).merged_into_id is None
    staff.locator("#merge-confirm").click()
    expect(staff.locator("#merged-into-link")).to_have_attribute("href", re.compile(rf"/tickets/{earlier.id}$"))
    with session_scope() as s:
        assert s.get_one(Ticket, ticket.id).merged_into_id == earlier.id
