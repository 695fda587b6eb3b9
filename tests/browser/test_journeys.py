"""The four user journeys, in real Chromium against the production build."""

from __future__ import annotations

import re
import secrets
import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def log_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/(tickets|queue|admin)/?$"))


def goto_signed_in(page, path: str) -> None:
    """Open `path` and wait until the app has hydrated with the session: before that the header still shows "Log in"
    and the form's handlers are not attached (on a loaded machine that took more than the 5 s `expect` waits)."""
    page.goto(path)
    expect(page.get_by_role("link", name="Log in", exact=True)).to_have_count(0, timeout=30_000)


def submit_ticket(page, title: str, description: str) -> int:
    goto_signed_in(page, "/tickets/new")
    page.fill("#title", title)
    page.fill("#description", description)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/tickets/\d+/?$"))
    return int(re.search(r"/tickets/(\d+)", page.url).group(1))


def test_1_sign_up_submit_see_triage_live_and_reply(new_page, factory):
    factory.admin()
    taken = factory.user("moderator", skills=["billing"])
    page = new_page()
    email = f"sam.{secrets.token_hex(3)}@example.com"
    page.goto("/signup")
    page.fill("#name", "Sam Newcomer")
    page.fill("#email", taken.email)
    page.fill("#password", "a long enough password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("already exists")  # clear inline error
    page.fill("#email", email)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/tickets/?$"))
    expect(page.get_by_text("No tickets yet")).to_be_visible()
    shot(page, "my-tickets-empty")

    submit_ticket(
        page,
        "Billing: charged twice <b>this</b> month",
        "My billing shows two charges for the same invoice. <script>alert('x')</script>",
    )
    expect(page.locator("#triage-pending")).to_be_visible()  # the AI is still working...
    shot(page, "ticket-triaging")
    expect(page.locator("#triage-result")).to_be_visible(timeout=30_000)  # ...and the result arrives live
    expect(page.locator("#ai-summary")).to_contain_text("charged twice <b>this</b> month")  # shown as text
    expect(page.locator("#triage-result")).to_contain_text("Billing")
    shot(page, "ticket-triaged")

    page.fill("#reply-body", "Thanks! The second charge was on the 3rd.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("The second charge was on the 3rd.")).to_be_visible()
    page.goto("/tickets")
    expect(page.get_by_role("link", name=re.compile("Billing: charged twice"))).to_be_visible()
    shot(page, "my-tickets")


def test_2_moderator_works_the_ticket_and_requester_sees_it_resolved(new_page, factory, app_url):
    factory.admin()
    moderator = factory.user("moderator", skills=["refunds"], name="Moe Moderator")
    requester = factory.user(name="Rita Requester")
    customer = new_page()
    log_in(customer, requester.email)
    ticket_id = submit_ticket(customer, "Need a refund for order 991", "Refunds please: order 991 never shipped.")

    staff = new_page()
    log_in(staff, moderator.email)
    expect(staff).to_have_url(re.compile(r".*/queue/?$"))
    row = staff.locator(f"#queue-row-{ticket_id}")
    expect(row).to_be_visible(timeout=30_000)  # routed to this moderator, appears without a reload
    shot(staff, "moderator-queue")
    row.get_by_role("link").first.click()
    staff.wait_for_url(re.compile(rf".*/tickets/{ticket_id}/?$"))
    expect(staff.locator("#ai-notes")).to_be_visible()
    staff.fill("#reply-body", "Internal: refund approved by finance, ref R-77")
    staff.locator("#internal").click()
    staff.get_by_role("button", name="Add internal note").click()
    expect(staff.get_by_text("Internal note", exact=True).first).to_be_visible()
    expect(staff.get_by_role("button", name="Send")).to_be_visible()  # the next reply is public again
    staff.fill("#reply-body", "Your refund is on its way.")
    staff.get_by_role("button", name="Send").click()
    expect(staff.get_by_text("Your refund is on its way.")).to_be_visible()
    staff.get_by_role("button", name="Resolve").click()
    expect(staff.get_by_text("Status changed to resolved.")).to_be_visible()
    shot(staff, "ticket-staff-view")

    # The requester's open page follows along: resolved, the public reply, never the internal note.
    expect(customer.get_by_text("Resolved", exact=True).first).to_be_visible(timeout=10_000)
    expect(customer.get_by_text("Your refund is on its way.")).to_be_visible()
    expect(customer.get_by_text("refund approved by finance")).to_have_count(0)
    expect(customer.locator("#ai-notes")).to_have_count(0)
    shot(customer, "ticket-requester-resolved")
    customer.reload()
    expect(customer.get_by_role("button", name="Reopen ticket")).to_be_visible()
    expect(customer.get_by_text("refund approved by finance")).to_have_count(0)


def test_3_admin_promotes_a_user_and_a_matching_ticket_lands_in_their_queue(new_page, factory, app_url):
    factory.admin()
    newbie = factory.user(name="Nia Newbie")
    requester = factory.user(name="Carl Customer")
    admin_page = new_page()
    log_in(admin_page, "admin@example.com")
    admin_page.goto("/admin/users")
    admin_page.fill("#user-search", "nia")
    admin_page.keyboard.press("Enter")
    row = admin_page.locator(f"#user-row-{newbie.id}")
    expect(admin_page.locator(f"#user-row-{requester.id}")).to_have_count(0)  # the search has been applied
    expect(row).to_be_visible()
    row.get_by_label(f"Role for {newbie.email}").click()
    admin_page.get_by_role("option", name="Moderator", exact=True).click()
    expect(row.get_by_label(f"Role for {newbie.email}")).to_contain_text("Moderator", timeout=10_000)
    skill_input = row.get_by_label(f"Add skill for {newbie.email}")
    skill_input.fill("kerberos")
    skill_input.press("Enter")
    row.get_by_role("button", name="Save skills").click()
    expect(row).to_contain_text("kerberos")
    expect(row.get_by_role("button", name="Save skills")).to_have_count(0)  # saved: nothing pending
    shot(admin_page, "admin-users")
    admin_page.goto("/admin")
    expect(admin_page.get_by_text("Tickets per day (last 14 days)")).to_be_visible()
    shot(admin_page, "admin-overview")

    mod_page = new_page()
    log_in(mod_page, newbie.email)
    expect(mod_page).to_have_url(re.compile(r".*/queue/?$"))
    expect(mod_page.get_by_text("Nothing in this queue")).to_be_visible()
    token = factory.token(requester)
    r = httpx.post(
        f"{app_url}/api/tickets",
        headers={"Authorization": f"Bearer {token}"},
        json={"title": "Kerberos tickets expire early", "description": "Our kerberos login fails."},
    )
    assert r.status_code == 201
    started = time.monotonic()
    expect(mod_page.locator(f"#queue-row-{r.json()['id']}")).to_be_visible(timeout=30_000)
    print(
        f"ticket appeared in the moderator's open queue {time.monotonic() - started:.1f} s after submit "
        f"(includes the fake Gemini's {2.5} s)"
    )
    expect(mod_page.get_by_text("New ticket assigned to you")).to_be_visible()
    shot(mod_page, "moderator-queue-live")


def test_4_users_get_not_allowed_and_not_found(new_page, factory):
    factory.admin()
    alice, bob = factory.user(name="Alice"), factory.user(name="Bob")
    private = factory.ticket(alice, "Alice's private problem", "Only Alice may read this.")
    page = new_page()
    log_in(page, bob.email)
    for path in ("/admin/users", "/admin", "/queue"):
        page.goto(path)
        expect(page.locator("#not-allowed")).to_be_visible()
        expect(page.get_by_text(alice.email)).to_have_count(0)
    shot(page, "not-allowed")
    page.goto(f"/tickets/{private.id}")
    expect(page.locator("#not-found")).to_be_visible()
    expect(page.get_by_text("Only Alice may read this.")).to_have_count(0)
    shot(page, "ticket-not-found")


def test_pages_at_phone_width_and_in_dark_mode(new_page, factory):
    factory.admin()
    user = factory.user(name="Phoebe Phone")
    factory.ticket(user, "Cannot export CSV", "The export button does nothing.")
    page = new_page(width=390, height=844, dark=True)
    log_in(page, user.email)
    expect(page.get_by_role("link", name="Cannot export CSV")).to_be_visible()
    shot(page, "my-tickets-phone-dark")
    page.goto("/login")
    shot(page, "login-phone-dark")


def _png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny, red) PNG, so the preview is an image the browser decodes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_5_files_travel_with_a_new_ticket_and_a_reply(new_page, factory):
    from sqlalchemy import select

    from ticketing_app.db import session_scope
    from ticketing_app.models import Attachment

    factory.admin()
    requester = factory.user(name="Fay Files")
    page = new_page()
    log_in(page, requester.email)
    goto_signed_in(page, "/tickets/new")
    page.fill("#title", "Invoice PDF shows the wrong total")
    page.fill("#description", "See the screenshot.")
    # An empty file is refused at once, in the form, and never sent.
    page.set_input_files(
        "#new-ticket-files input[type=file]", files=[{"name": "empty.txt", "mimeType": "text/plain", "buffer": b""}]
    )
    expect(page.get_by_role("alert")).to_contain_text("empty.txt is empty")
    png = _png()
    page.set_input_files(
        "#new-ticket-files input[type=file]",
        files=[{"name": "screenshot.png", "mimeType": "image/png", "buffer": png}],
    )
    expect(page.locator("#new-ticket-files-picker")).to_contain_text("screenshot.png")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/tickets/\d+/?$"))
    ticket_id = int(re.search(r"/tickets/(\d+)", page.url).group(1))
    with session_scope() as s:
        first = s.scalars(select(Attachment).where(Attachment.ticket_id == ticket_id)).one()
        assert (first.filename, first.content_type, first.size, first.comment_id) == (
            "screenshot.png",
            "image/png",
            len(png),
            None,
        )
    shown = page.locator(f"#attachment-{first.id}")
    expect(shown).to_contain_text("screenshot.png")
    expect(shown.get_by_role("img", name="screenshot.png")).to_be_visible()  # the inline preview
    assert shown.get_by_role("img").get_attribute("src").startswith("data:image/jpeg;base64,")  # re-encoded
    # decoded, not blocked by the page's Content-Security-Policy (img-src 'self' data:)
    assert shown.get_by_role("img").evaluate("img => img.complete && img.naturalWidth") == 2

    page.fill("#reply-body", "Here is the log as well.")
    log = "line 1: total mismatch\nline 2: ünïcode\n".encode()
    page.set_input_files(
        "#reply-files input[type=file]", files=[{"name": "app.log", "mimeType": "text/plain", "buffer": log}]
    )
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Here is the log as well.")).to_be_visible()
    with session_scope() as s:
        second = s.scalars(select(Attachment).where(Attachment.filename == "app.log")).one()
        assert second.comment_id is not None and second.content_type == "text/plain"
    reply_file = page.locator(f"#attachment-{second.id}")
    expect(reply_file).to_contain_text("app.log")
    expect(page.locator("#reply-files-picker")).not_to_contain_text("app.log")  # the picker was cleared
    shot(page, "ticket-with-files")

    with page.expect_download() as info:
        reply_file.get_by_role("button", name="Download app.log").click()
    download = info.value
    assert download.suggested_filename == "app.log"
    assert open(download.path(), "rb").read() == log

    # A mail's link to the file lands on it; another user gets the not-found page, not the file.
    page.goto(f"/tickets/{ticket_id}#attachment-{second.id}")
    expect(page.locator(f"#attachment-{second.id}")).to_be_visible()
    stranger = new_page()
    log_in(stranger, factory.user(name="Stan Stranger").email)
    stranger.goto(f"/tickets/{ticket_id}#attachment-{second.id}")
    expect(stranger.locator("#not-found")).to_be_visible()
    expect(stranger.locator(".attachment")).to_have_count(0)
