"""Canned replies in the browser: staff write one, fill a reply with it in one click, and send it with its status."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_journeys import log_in

pytestmark = pytest.mark.browser


def test_staff_write_a_canned_reply_and_send_it_with_its_status(new_page, factory):
    admin = factory.admin()
    requester = factory.user(name="Rita Requester")
    ticket = factory.ticket(requester, "Cannot reset my password", "The reset mail never arrives.")

    staff = new_page()
    log_in(staff, admin.email)
    staff.get_by_role("link", name="Canned replies").click()
    staff.wait_for_url(re.compile(r".*/canned-replies/?$"))
    staff.fill("#canned-title", "Reset mail")
    staff.fill("#canned-body", "Hi {{requester.nmae}}")  # a typo is refused with the known names
    staff.get_by_role("button", name="Add").click()
    expect(staff.get_by_role("alert")).to_contain_text("Unknown placeholder {{requester.nmae}}")
    staff.fill(
        "#canned-body", "Hi {{requester.first_name}}, about {{ticket.number}}: check your spam folder.\n{{agent.name}}"
    )
    staff.select_option("#canned-status", "resolved")
    staff.get_by_role("button", name="Add").click()
    expect(staff.get_by_text("Canned reply added.")).to_be_visible()
    expect(staff.get_by_text("sets resolved")).to_be_visible()
    shot(staff, "canned-replies")

    staff.goto(f"/tickets/{ticket.id}")
    staff.select_option("#canned-picker", label="Reset mail (sets resolved)")
    expect(staff.locator("#reply-body")).to_have_value(
        f"Hi Rita, about TCK-{ticket.number}: check your spam folder.\nAda Admin"
    )
    expect(staff.locator("#canned-status")).to_contain_text("resolved")
    staff.get_by_role("button", name="Send").click()
    expect(staff.get_by_text("Reply sent; status changed to resolved.")).to_be_visible()
    expect(staff.get_by_text("Resolved", exact=True).first).to_be_visible()

    customer = new_page()
    log_in(customer, requester.email)
    customer.get_by_role("link", name="Cannot reset my password").click()
    expect(customer.get_by_text("check your spam folder")).to_be_visible()
    expect(customer.get_by_text("Resolved", exact=True).first).to_be_visible()
