"""The notification settings page: a person turns a kind of mail off, and it stays off."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_journeys import log_in
from ticketing_app.db import session_scope
from ticketing_app.models import User

pytestmark = pytest.mark.browser


def muted(user_id: int) -> list[str]:
    with session_scope() as s:
        return list(s.get(User, user_id).muted_email_kinds)


def test_a_requester_turns_staff_replies_off_on_the_settings_page(new_page, factory):
    factory.admin()
    user = factory.user(name="Nora Notified")
    page = new_page()
    log_in(page, user.email)
    page.get_by_role("link", name="Notifications").click()  # from the header
    page.wait_for_url(re.compile(r".*/settings/notifications/?$"))

    replies = page.get_by_role("switch", name="Staff replied on my ticket")  # labelled
    status = page.get_by_role("switch", name="My ticket's status changed (in progress, closed, reopened)")
    expect(replies).to_have_attribute("aria-checked", "true")
    expect(page.get_by_role("switch", name=re.compile("Admin digest"))).to_have_count(0)  # not for this role
    replies.click()
    expect(page.locator("#notify-saved")).to_contain_text("are off")
    expect(replies).to_have_attribute("aria-checked", "false")
    shot(page, "notification-settings")
    deadline = time.monotonic() + 5
    while muted(user.id) != ["ticket_reply"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert muted(user.id) == ["ticket_reply"]

    page.reload()  # persisted: the page shows what the server holds
    expect(page.get_by_role("switch", name="Staff replied on my ticket")).to_have_attribute("aria-checked", "false")
    expect(status).to_have_attribute("aria-checked", "true")
    status.focus()  # and by keyboard
    page.keyboard.press("Space")
    expect(status).to_have_attribute("aria-checked", "false")
    deadline = time.monotonic() + 5
    while muted(user.id) != ["ticket_reply", "ticket_status"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert muted(user.id) == ["ticket_reply", "ticket_status"]
