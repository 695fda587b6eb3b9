"""The Content-Security-Policy against the real production build: the pages work under it, with no violation.

Every `securitypolicyviolation` event is recorded from before the first script of each page runs (an init
script), and every console message too: the log-in page, a logged-in user's ticket page (live updates over
the event socket) and the admin pages, including a toast (Reflex runs those with eval).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_journeys import log_in, submit_ticket

pytestmark = pytest.mark.browser

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
});
"""


def watched_page(new_page):
    page = new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    return page, console


def assert_no_violations(page, console: list[str], where: str) -> None:
    violations = page.evaluate("window.__cspViolations || []")
    assert violations == [], f"{where}: {violations}"
    csp_messages = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert csp_messages == [], f"{where}: {csp_messages}"


def test_pages_run_under_the_policy_without_a_violation(new_page, factory):
    factory.admin()
    newbie = factory.user(name="Nia Newbie")
    requester = factory.user(name="Rita Requester")

    page, console = watched_page(new_page)
    response = page.goto("/login")
    policy = response.headers["content-security-policy"]
    assert (
        "frame-ancestors 'none'" in policy
        and "'sha256-" in policy
        and "'unsafe-inline'" not in policy.split("style-src")[0]
    )
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    expect(page.locator("#email")).to_be_visible()
    assert_no_violations(page, console, "/login")

    log_in(page, requester.email)  # the event socket works: the log-in answer arrives through it
    ticket_id = submit_ticket(page, "Charged twice for billing", "Two charges on my card this month.")
    expect(page.locator("#triage-result")).to_be_visible(timeout=30_000)  # a live update over the socket
    page.fill("#reply-body", "The second charge was on the 3rd.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("The second charge was on the 3rd.")).to_be_visible()
    page.goto(f"/tickets/{ticket_id}")  # a dynamic route, loaded afresh
    expect(page.get_by_text("The second charge was on the 3rd.")).to_be_visible()
    assert_no_violations(page, console, "ticket page")

    admin, admin_console = watched_page(new_page)
    log_in(admin, "admin@example.com")
    admin.goto("/admin/users")
    row = admin.locator(f"#user-row-{newbie.id}")
    expect(row).to_be_visible()
    row.get_by_label(f"Role for {newbie.email}").click()
    admin.get_by_role("option", name="Moderator", exact=True).click()
    toasts = admin.get_by_role("region", name=re.compile("Notifications"))  # sonner's; the row repeats the text
    expect(toasts.get_by_text("Nia Newbie is now a moderator.")).to_be_visible(timeout=10_000)  # run with eval
    admin.goto("/admin")
    expect(admin.get_by_text("Tickets per day (last 14 days)")).to_be_visible()
    expect(admin).to_have_url(re.compile(r".*/admin/?$"))
    assert_no_violations(admin, admin_console, "admin pages")
