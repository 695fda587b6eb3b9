"""Collision detection in the browser: staff on one ticket see each other typing, and a reply written on a
view that a newer reply has overtaken is held back once with a warning."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, update

from tests.browser.test_journeys import log_in
from ticketing_app.db import session_scope
from ticketing_app.models import Job, Ticket

pytestmark = pytest.mark.browser

LIVE_BOUND_SECONDS = 2.0  # the issue: others see it "live, within 2 s"

# Records in window.__shownAt[key] when (ms since the epoch) an element first contains a text: a MutationObserver
# fires as the page renders the change, unlike expect()'s polling (100 ms, 250 ms, ... then once a second).
_WATCH = """(function (key, selector, text) {
  const shown = () => {
    const element = document.querySelector(selector);
    return element !== null && element.textContent.includes(text);
  };
  window.__shownAt = window.__shownAt || {};
  window.__shownAt[key] = new Promise((resolve) => {
    if (shown()) return resolve(Date.now());
    const observer = new MutationObserver(() => {
      if (shown()) { observer.disconnect(); resolve(Date.now()); }
    });
    observer.observe(document, { subtree: true, childList: true, characterData: true });
    setTimeout(() => { observer.disconnect(); resolve(null); }, 15000);
  });
})"""


def watch(page, key: str, selector: str, text: str = "", *, from_next_page: bool = False) -> None:
    """Start timing when `selector` comes to contain `text` on `page` (or on the next page it opens)."""
    script = f"{_WATCH}({json.dumps(key)}, {json.dumps(selector)}, {json.dumps(text)});"
    if from_next_page:
        page.add_init_script(script)
    else:
        page.evaluate(script)


def seconds_until_shown(page, key: str, since: float) -> float:
    """How long after `since` (time.time()) the watched text appeared; fails if it never did."""
    shown_at = page.evaluate("(key) => window.__shownAt[key]", key)
    assert shown_at is not None, f"{key}: never shown"
    return shown_at / 1000 - since


def test_staff_see_who_is_typing_and_a_stale_reply_warns_first(new_page, factory):
    admin = factory.admin()
    mod = factory.user("moderator", name="Moe Moderator")
    requester = factory.user(name="Rita Requester")
    ticket = factory.ticket(requester, "Printer on fire", "It is on fire.")
    with session_scope() as s:  # worked by Moe, with no triage or routing left to move it elsewhere
        s.execute(delete(Job).where(Job.status == "queued", Job.payload["ticket_id"].as_integer() == ticket.id))
        s.execute(update(Ticket).where(Ticket.id == ticket.id).values(assigned_to_id=mod.id, triage_status="done"))

    boss, moe = new_page(), new_page()
    log_in(boss, admin.email)
    boss.goto(f"/tickets/{ticket.id}")
    expect(boss.locator("#reply-body")).to_be_visible()
    log_in(moe, mod.email)
    boss.wait_for_timeout(1500)  # the admin's page has settled into its live loop

    # Timed from the moment Moe starts opening the page (loading it included) to Ada's page showing him.
    watch(boss, "moe", "#viewers", "Moe Moderator")
    watch(moe, "page", "body", "It is on fire.", from_next_page=True)  # the ticket itself, once loaded
    watch(moe, "ada", "#viewers", "Ada Admin", from_next_page=True)
    opened = time.time()
    moe.goto(f"/tickets/{ticket.id}")
    seen_by_boss = seconds_until_shown(boss, "moe", opened)
    page_shown, seen_by_moe = seconds_until_shown(moe, "page", opened), seconds_until_shown(moe, "ada", opened)
    print(f"collision: Moe's ticket shown {page_shown:.2f} s, Ada sees Moe {seen_by_boss:.2f} s, ", end="")
    print(f"Moe sees Ada {seen_by_moe:.2f} s after he opened it")
    assert seen_by_boss <= LIVE_BOUND_SECONDS and seen_by_moe <= LIVE_BOUND_SECONDS
    expect(moe.locator("#reply-body")).to_be_visible()

    # Timed from Moe's first key press to Ada's page saying he is typing.
    watch(boss, "typing", "#viewers", "Moe Moderator is typing a reply")
    started = time.time()
    moe.locator("#reply-body").press("W")
    typing_seen = seconds_until_shown(boss, "typing", started)
    print(f"collision: Ada sees Moe typing {typing_seen:.2f} s after his first key press")
    assert typing_seen <= LIVE_BOUND_SECONDS
    moe.locator("#reply-body").press_sequentially("e are sending the fire brigade", delay=20)

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
