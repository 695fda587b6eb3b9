"""Keyboard only: every control can be reached with Tab in a sensible order, shows where the focus is, and
works with Enter. No mouse clicks in these tests once the page is open.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_for_jobs_to_finish
from tests.browser.test_journeys import log_in
from tests.factories import PASSWORD
from ticketing_app.db import session_scope
from ticketing_app.models import Ticket

pytestmark = pytest.mark.browser

MAX_TABS = 60


@pytest.fixture(autouse=True)
def _jobs_done_after(clean_db):
    yield
    wait_for_jobs_to_finish()


_DESCRIBE_ACTIVE = """() => {
    const e = document.activeElement;
    if (!e || e === document.body) return '';
    const name = e.getAttribute('aria-label') || e.id || (e.innerText || e.value || '').trim().slice(0, 40);
    return `${e.tagName.toLowerCase()} ${name}`;
}"""

# The area whose look should change with focus: the element, or the Radix field that draws its ring.
_FOCUS_BOX = """() => {
    const e = document.activeElement;
    const shown = e.closest('.rt-TextFieldRoot, .rt-TextAreaRoot') || e;
    const r = shown.getBoundingClientRect();
    return {x: r.x, y: r.y, width: r.width, height: r.height};
}"""


def focused(page) -> str:
    return page.evaluate(_DESCRIBE_ACTIVE)


def assert_focus_visible(page) -> None:
    """The focused element looks different from when it is not focused (Shift+Tab away and Tab back)."""
    page.evaluate("document.activeElement.scrollIntoView({block: 'center'})")
    who = focused(page)
    box = page.evaluate(_FOCUS_BOX)
    pad = 4
    clip = {
        "x": max(box["x"] - pad, 0),
        "y": max(box["y"] - pad, 0),
        "width": box["width"] + 2 * pad,
        "height": box["height"] + 2 * pad,
    }
    with_focus = page.screenshot(clip=clip, animations="disabled")
    page.keyboard.press("Shift+Tab")
    without = page.screenshot(clip=clip, animations="disabled")
    page.keyboard.press("Tab")
    assert focused(page) == who, f"Shift+Tab then Tab did not come back to {who!r}"
    assert with_focus != without, f"no visible focus indicator on {who!r}"


def tab_to(page, target, *, check_each: bool = False) -> list[str]:
    """Press Tab until `target` (a locator) has the focus; returns what was focused on the way."""
    order = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        order.append(focused(page))
        if check_each and order[-1]:
            assert_focus_visible(page)
        if target.evaluate("el => el === document.activeElement"):
            return order
    raise AssertionError(f"{MAX_TABS} Tabs never reached {target}; focus went through {order}")


def test_log_in_with_the_keyboard_alone(new_page, factory):
    factory.admin()
    user = factory.user(name="Kim Keyboard")
    page = new_page()
    page.goto("/login")
    expect(page.locator("#email")).to_be_visible()
    on_the_way = tab_to(page, page.locator("#email"), check_each=True)
    print("Tab order to the e-mail field:", on_the_way)
    page.keyboard.type(user.email)
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    assert_focus_visible(page)
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Log in")).to_be_focused()
    assert_focus_visible(page)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Forgot your password?")).to_be_focused()
    assert_focus_visible(page)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Sign up").last).to_be_focused()
    assert_focus_visible(page)
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_url(re.compile(r".*/tickets/?$"))


def test_open_a_ticket_from_my_tickets_with_the_keyboard(new_page, factory):
    factory.admin()
    user = factory.user(name="Kim Keyboard")
    factory.ticket(user, "Older problem", "Something else.")
    ticket = factory.ticket(user, "VPN drops every hour", "The VPN disconnects every hour on the hour.")
    page = new_page()
    log_in(page, user.email)
    link = page.get_by_role("link", name="VPN drops every hour")
    expect(link).to_be_visible()
    page.locator("body").focus()
    tab_to(page, link, check_each=True)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/tickets/{ticket.id}/?$"))
    expect(page.get_by_role("heading", name="VPN drops every hour")).to_be_visible()
    expect(page.locator("#triage-pending, #triage-result").first).to_be_visible()


def tab_through(page) -> list[str]:
    """Tab from the top of the page to its end, checking that each focused element shows it; returns the order."""
    page.keyboard.press("Escape")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate("window.scrollTo(0, 0)")
    order: list[str] = []
    for _ in range(MAX_TABS * 2):
        page.keyboard.press("Tab")
        marked = page.evaluate("""() => {
            const e = document.activeElement;
            if (!e || e === document.body) return 'end';
            if (e.dataset.tabbed) return 'again';
            e.dataset.tabbed = '1';
            return 'new';
        }""")
        if marked != "new":
            return order
        order.append(focused(page))
        assert order[-1].split(" ", 1)[1].strip(), f"a tab stop without a name after {order[:-1]}"
        assert_focus_visible(page)
    raise AssertionError(f"no end after {MAX_TABS * 2} Tabs: {order}")


def test_every_control_shows_the_focus(new_page, factory):
    """The busiest pages (an admin sees every control), tabbed from top to bottom."""
    factory.admin()
    factory.user("moderator", skills=["billing"], name="Moe Moderator")
    user = factory.user(name="Rita Requester")
    ticket = factory.ticket(user, "Billing: charged twice", "Two charges for one invoice.")
    page = new_page()
    log_in(page, "admin@example.com")
    page.goto(f"/tickets/{ticket.id}")
    expect(page.locator("#triage-result")).to_be_visible(timeout=30_000)
    pages = {
        f"/tickets/{ticket.id}": "#triage-result",
        "/tickets": "text=Billing: charged twice",
        "/queue": "[role=radiogroup]",
        "/admin/users": f"#user-row-{user.id}",
        "/admin": "#job-health",
        "/settings/notifications": "#notify-admin_digest",
    }
    for path, ready in pages.items():
        page.goto(path)
        expect(page.locator(ready).first).to_be_visible()
        order = tab_through(page)
        print(f"{path}: {len(order)} tab stops: {order}")
        assert len(order) >= 5, f"{path}: only {order} reachable by Tab"


def test_change_a_status_from_the_queue_with_the_keyboard(new_page, factory):
    """A Radix select opens with Enter, keeps Tab inside its list while open, and picks with the arrows."""
    factory.admin()
    moderator = factory.user("moderator", skills=["billing"], name="Moe Moderator")
    user = factory.user(name="Rita Requester")
    ticket = factory.ticket(user, "Billing: charged twice", "Two charges for one invoice.")
    page = new_page()
    log_in(page, moderator.email)
    row = page.locator(f"#queue-row-{ticket.id}")
    expect(row).to_be_visible(timeout=30_000)
    trigger = row.get_by_role("combobox", name=re.compile("Change status of"))
    tab_to(page, trigger)
    assert_focus_visible(page)
    page.keyboard.press("Enter")
    listbox = page.get_by_role("listbox")
    expect(listbox).to_be_visible()
    page.keyboard.press("Tab")  # the open menu is modal: the page behind is not reachable
    assert listbox.evaluate("el => el.contains(document.activeElement)"), focused(page)
    resolved = listbox.get_by_role("option", name="resolved", exact=True)
    for _ in range(6):  # arrow down to it (Radix moves the focus through the options)
        if resolved.evaluate("el => el === document.activeElement"):
            break
        page.keyboard.press("ArrowDown")
    expect(resolved).to_be_focused()
    page.keyboard.press("Enter")
    expect(listbox).to_have_count(0)
    expect(row).to_have_count(0, timeout=10_000)  # resolved: no longer in the active queue
    with session_scope() as s:
        assert s.get(Ticket, ticket.id).status == "resolved"
