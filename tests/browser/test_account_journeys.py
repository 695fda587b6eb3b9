"""Journeys of account self-service and search, in real Chromium against the production build: a forgotten
password reset through the mailed link, and a search whose matches are highlighted."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, select, update

from tests.browser.conftest import shot, wait_for_jobs_to_finish
from tests.browser.test_journeys import log_in
from ticketing_app.db import session_scope
from ticketing_app.models import EmailMessage, Job, Ticket

pytestmark = pytest.mark.browser

NEW_PASSWORD = "my fresh passphrase 42"


@pytest.fixture(autouse=True)
def _settled():
    yield
    wait_for_jobs_to_finish()  # the mails of this test: none in flight when the next test empties the tables


def mailed_link(email: str, kind: str) -> str:
    """The path and token of the link in the last mail of this kind to `email` (what the person clicks)."""
    with session_scope() as s:
        body = s.scalars(
            select(EmailMessage.body_text)
            .where(EmailMessage.to_address == email, EmailMessage.kind == kind)
            .order_by(EmailMessage.id.desc())
        ).first()
    assert body, f"no {kind} mail to {email}"
    return re.search(r"https?://[^/\s]+(/[\w-]+\?token=[\w-]+)", body).group(1)


def test_forgot_password_mail_link_new_password_log_in(new_page, factory):
    user = factory.user(name="Forgetful Fran")
    page = new_page()
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url(re.compile(r".*/forgot-password/?$"))
    page.wait_for_load_state("networkidle")  # the page's handlers are attached (a click before that is lost)
    page.fill("#email", user.email)
    page.get_by_role("button", name="Mail me a link").click()
    # the answer takes as long for a known address as for an unknown one (a password hash): slow under load
    expect(page.locator("#notice")).to_contain_text("If an account uses this address", timeout=15_000)
    shot(page, "forgot-password-sent")

    page.goto(mailed_link(user.email, "password_reset"))
    page.fill("#password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD + "!")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("alert")).to_contain_text("not the same")
    page.fill("#confirm", NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url(re.compile(r".*/login/?$"))
    expect(page.get_by_role("alert")).to_contain_text("Your password is changed")
    shot(page, "reset-password-done")

    log_in(page, user.email, NEW_PASSWORD)
    expect(page.locator("#profile-link")).to_contain_text("Forgetful Fran")
    page.goto(mailed_link(user.email, "password_reset"))  # the same link again: used up
    page.fill("#password", "another passphrase 43")
    page.fill("#confirm", "another passphrase 43")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid any more")


def test_verify_link_and_profile_name(new_page, factory):
    user = factory.user(name="Vic Verify")
    page = new_page()
    log_in(page, user.email)
    page.locator("#profile-link").click()
    page.wait_for_url(re.compile(r".*/profile/?$"))
    expect(page.locator("#email-unverified")).to_be_visible()
    page.fill("#name", "Victoria Verified")
    page.get_by_role("button", name="Save name").click()
    expect(page.locator("#notice")).to_contain_text("Your name is saved")
    expect(page.locator("#profile-link")).to_contain_text("Victoria Verified")
    page.goto(mailed_link(user.email, "welcome"))
    expect(page.locator("#notice")).to_contain_text("is verified")
    page.goto("/profile")
    expect(page.locator("#email-verified")).to_be_visible()


def search(page, words: str) -> None:
    page.fill("#search-box", words)
    page.get_by_role("button", name="Search").click()


def test_search_highlights_the_matching_words_as_text(new_page, factory):
    """The same highlighted results in My tickets, the moderator's queue and the admin's view of all tickets,
    each holding only what that person may see."""
    factory.admin()
    mod = factory.user("moderator", name="Moe Moderator")
    other_mod = factory.user("moderator")
    user, other_user = factory.user(), factory.user()
    own = factory.ticket(user, "Le café est fermé <b>aujourd'hui</b>", "Impossible de payer au café.")
    printer = factory.ticket(user, "Printer jammed", "Paper stuck in the tray.")
    others = factory.ticket(other_user, "Cafe machine leaks", "The café machine leaks water.")
    with session_scope() as s:  # Moe works the user's tickets, another moderator Otto's; no triage to move them
        s.execute(delete(Job).where(Job.status == "queued"))
        for ticket, assignee in ((own, mod), (printer, mod), (others, other_mod)):
            s.execute(
                update(Ticket).where(Ticket.id == ticket.id).values(assigned_to_id=assignee.id, triage_status="done")
            )

    def shows_only_highlighted(page, wanted: list[int]) -> None:
        titles = page.locator(".search-title")
        expect(titles).to_have_count(len(wanted))  # the results are in (before that, no title is highlighted)
        if own.id in wanted:
            title = titles.filter(has_text="Le café")
            expect(title.locator("mark")).to_have_text("café")
            expect(title).to_contain_text("<b>aujourd'hui</b>")  # the title's markup is shown as text
            expect(title.locator("b")).to_have_count(0)
        if others.id in wanted:  # the title unaccented, the text accented: both match "cafe"
            expect(titles.filter(has_text="machine leaks").locator("mark")).to_have_text("Cafe")
        else:
            expect(page.get_by_text("machine leaks")).to_have_count(0)
        expect(page.get_by_text("Printer jammed")).to_have_count(0)
        snippets = page.locator(".search-snippet")
        expect(snippets).to_have_count(len(wanted))
        for snippet in snippets.all():
            expect(snippet.locator("mark").first).to_have_text("café")

    page = new_page()
    log_in(page, user.email)  # My tickets
    search(page, "cafe")
    shows_only_highlighted(page, [own.id])
    shot(page, "search-highlighted")

    moe = new_page()
    log_in(moe, mod.email)
    moe.goto("/queue")
    search(moe, "cafe")
    shows_only_highlighted(moe, [own.id])  # Otto's ticket is another moderator's
    expect(moe.locator(f"#queue-row-{own.id} .search-title mark")).to_have_text("café")

    boss = new_page()
    log_in(boss, "admin@example.com")
    boss.goto("/queue")
    boss.get_by_role("radio", name="All").click()
    search(boss, "cafe")
    shows_only_highlighted(boss, [own.id, others.id])
    shot(boss, "search-highlighted-admin")
