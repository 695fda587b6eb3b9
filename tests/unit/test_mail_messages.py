"""The e-mail builders: escaping, header safety, facts in both parts, links."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from html.parser import HTMLParser

import pytest

from ticketing_app.domain import EmailKind
from ticketing_app.mail.messages import (
    MAX_SUBJECT_CHARS,
    OutgoingEmail,
    assignment_email,
    format_ticket_number,
    ticket_merged_email,
    ticket_received_email,
    ticket_resolved_email,
    welcome_email,
)

XSS = "<script>alert(1)</script>"
QUOTES = '"quotes"'
EVIL = f"{XSS} {QUOTES} & 'apos'"
URL = "https://help.example.com/tickets/1042"


class _Collector(HTMLParser):
    """Collects what a browser would see: element names, href values and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        self.hrefs.extend(v or "" for k, v in attrs if k == "href")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(markup: str) -> _Collector:
    collector = _Collector()
    collector.feed(markup)
    collector.close()
    return collector


ALLOWED_TAGS = {
    *("html", "head", "meta", "body", "div", "h1", "h2", "p", "br"),
    *("table", "tr", "td", "a", "ul", "li", "blockquote"),
}


def build_all(value: str = EVIL, url: str = URL, to: str = "someone@example.com") -> dict[str, OutgoingEmail]:
    """Every builder, with ``value`` in every user- or AI-written field."""
    return {
        "welcome": welcome_email(to=to, name=value, app_url=url),
        "assigned": assignment_email(
            to=to,
            assignee_name=value,
            number=1042,
            title=value,
            priority=value,
            category=value,
            summary=value,
            helpful_notes=value,
            ticket_url=url,
            reason=value,
        ),
        "reassigned_notes_list": assignment_email(
            to=to,
            assignee_name=value,
            number="TCK-1042",
            title=value,
            priority="high",
            category="bug",
            summary=value,
            helpful_notes=[value, value],
            ticket_url=url,
            reason=value,
            reassigned=True,
        ),
        "received": ticket_received_email(
            to=to,
            requester_name=value,
            number=1042,
            title=value,
            priority=value,
            category=value,
            summary=value,
            ticket_url=url,
            assignee_name=value,
        ),
        "resolved": ticket_resolved_email(to=to, requester_name=value, number=1042, title=value, ticket_url=url),
        "merged": ticket_merged_email(
            to=to,
            recipient_name=value,
            number=1042,
            title=value,
            into_number="TCK-1001",
            into_title=value,
            ticket_url=url,
            note=value,
        ),
    }


ALL_KINDS = ["welcome", "assigned", "reassigned_notes_list", "received", "resolved", "merged"]


@pytest.mark.parametrize("which", ALL_KINDS)
def test_html_escapes_script_and_quotes(which: str) -> None:
    email = build_all()[which]
    assert XSS not in email.html
    assert "<script" not in email.html.lower()
    assert QUOTES not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "&quot;quotes&quot;" in email.html
    assert "&#x27;apos&#x27;" in email.html
    parsed = parse_html(email.html)
    # only our own layout elements: the user text never became markup
    assert set(parsed.tags) <= ALLOWED_TAGS
    assert "script" not in parsed.tags
    # and a browser shows the text exactly as written
    assert XSS in "".join(parsed.text)
    assert all(not name.startswith("on") for name, _ in parsed.attrs)


@pytest.mark.parametrize("which", ALL_KINDS)
def test_text_part_keeps_user_text_verbatim(which: str) -> None:
    email = build_all()[which]
    # plain text is not HTML: nothing is escaped there
    assert "&lt;" not in email.text and "&quot;" not in email.text
    if which != "welcome":
        assert EVIL in email.text


@pytest.mark.parametrize("which", ALL_KINDS)
def test_subject_has_no_line_breaks_and_is_bounded(which: str) -> None:
    injected = "Printer broken\r\nBcc: everyone@example.com\nX-Evil: 1\r" + "x" * 500
    email = build_all(value=injected)[which]
    assert "\r" not in email.subject and "\n" not in email.subject
    assert len(email.subject) <= MAX_SUBJECT_CHARS
    assert not re.search(r"[\x00-\x1f\x7f]", email.subject)
    if which != "welcome":
        assert email.subject.startswith("[TCK-1042] ")
        assert "Printer broken Bcc: everyone@example.com X-Evil: 1 x" in email.subject
        assert email.subject.endswith("\u2026")


def test_subject_strips_unicode_line_separators() -> None:
    email = ticket_resolved_email(
        to="r@example.com", requester_name="R", number=7, title="a\u2028b\u2029c\x85d\x00e", ticket_url=URL
    )
    assert email.subject == "[TCK-7] Resolved: a b c d e"


@pytest.mark.parametrize("which", ALL_KINDS)
def test_links_are_only_the_given_url(which: str) -> None:
    url = 'https://help.example.com/t/1042?x=1&y="2"<a>'
    email = build_all(url=url)[which]
    parsed = parse_html(email.html)
    assert parsed.hrefs == [url]  # attribute decodes back to exactly the caller's URL
    assert 'href="https://help.example.com/t/1042?x=1&amp;y=&quot;2&quot;&lt;a&gt;"' in email.html
    assert url in email.text
    # user text that looks like a link is not turned into one
    email2 = build_all(value="see https://evil.example/x and <a href='https://evil.example'>x</a>")[which]
    assert parse_html(email2.html).hrefs == [URL]


@pytest.mark.parametrize(
    "bad_url",
    [
        "javascript:alert(1)",
        "/tickets/1",
        "https://",
        "",
        "https://a.example/x y",
        "https://a.example/\r\nX: y",
    ],
)
def test_bad_urls_are_refused(bad_url: str) -> None:
    with pytest.raises(ValueError):
        ticket_resolved_email(to="r@example.com", requester_name="R", number=1, title="t", ticket_url=bad_url)
    with pytest.raises(ValueError):
        welcome_email(to="r@example.com", name="R", app_url=bad_url)


@pytest.mark.parametrize("bad_to", ["", "no-at-sign", "a@example.com\r\nBcc: b@example.com"])
def test_bad_recipient_is_refused(bad_to: str) -> None:
    with pytest.raises(ValueError):
        welcome_email(to=bad_to, name="R", app_url=URL)


def test_welcome_email() -> None:
    email = welcome_email(to="ada@example.com", name="Ada", app_url="https://help.example.com/")
    assert email.kind == EmailKind.WELCOME
    assert email.to == "ada@example.com"
    assert email.subject == "Welcome to the helpdesk"
    assert "Hello Ada," in email.text
    assert "https://help.example.com/" in email.text
    assert "Hello Ada," in email.html
    assert parse_html(email.html).hrefs == ["https://help.example.com/"]


def test_assignment_email_has_every_fact() -> None:
    email = assignment_email(
        to="mod@example.com",
        assignee_name="Grace",
        number=1042,
        title="VPN drops every hour",
        priority="high",
        category="performance",
        summary="The VPN disconnects hourly.\nStarted after the update.",
        helpful_notes="Check the DHCP lease time.\nAsk for the client log.",
        ticket_url=URL,
        reason="Skills match: networking, vpn (least loaded)",
    )
    assert email.kind == EmailKind.TICKET_ASSIGNED
    assert email.to == "mod@example.com"
    assert email.subject == "[TCK-1042] Assigned to you: VPN drops every hour"
    for fact in (
        "Hello Grace,",
        "TCK-1042",
        "Title: VPN drops every hour",
        "Priority: high",
        "Category: performance",
        "The VPN disconnects hourly.\nStarted after the update.",
        "Check the DHCP lease time.\nAsk for the client log.",
        "Skills match: networking, vpn (least loaded)",
        URL,
    ):
        assert fact in email.text, fact
    for fact in (
        "TCK-1042",
        "VPN drops every hour",
        "high",
        "performance",
        "The VPN disconnects hourly.<br>",
        "Check the DHCP lease time.<br>",
        "Skills match: networking, vpn (least loaded)",
    ):
        assert fact in email.html, fact
    assert parse_html(email.html).hrefs == [URL]


def test_reassignment_subject_and_notes_list() -> None:
    email = assignment_email(
        to="mod@example.com",
        assignee_name="Grace",
        number="TCK-1042",
        title="VPN",
        priority=None,
        category=None,
        summary=None,
        helpful_notes=["first note", "  ", "second <note>"],
        ticket_url=URL,
        reason=None,
        reassigned=True,
    )
    assert email.subject == "[TCK-1042] Reassigned to you: VPN"
    assert "reassigned to you" in email.text
    assert "- first note\n- second <note>" in email.text
    assert "<li>first note</li><li>second &lt;note&gt;</li>" in email.html
    assert "Priority: not set" in email.text
    assert "(no summary)" in email.text


def test_ticket_received_email() -> None:
    email = ticket_received_email(
        to="req@example.com",
        requester_name="Linus",
        number=1043,
        title="Cannot log in",
        priority="medium",
        category="account_access",
        summary="Login fails with an SSO error.",
        ticket_url=URL,
        assignee_name="Grace",
    )
    assert email.kind == EmailKind.TICKET_RECEIVED
    assert email.subject == "[TCK-1043] We received your ticket: Cannot log in"
    for fact in (
        "Hello Linus,",
        "TCK-1043",
        "Title: Cannot log in",
        "Priority: medium",
        "Category: account_access",
        "assigned to Grace",
        "Login fails with an SSO error.",
        URL,
    ):
        assert fact in email.text, fact
    assert "TCK-1043" in email.html and "Grace" in email.html

    unassigned = dataclasses.replace(email)  # frozen dataclass: replace works, mutation does not
    with pytest.raises(dataclasses.FrozenInstanceError):
        unassigned.subject = "x"  # type: ignore[misc]
    waiting = ticket_received_email(
        to="req@example.com",
        requester_name="",
        number=1043,
        title="Cannot log in",
        priority=None,
        category=None,
        summary=None,
        ticket_url=URL,
        assignee_name=None,
    )
    assert waiting.text.startswith("Hello,\n")
    assert "waiting for a moderator" in waiting.text
    assert "Assigned to" not in waiting.text


def test_ticket_resolved_email() -> None:
    email = ticket_resolved_email(
        to="req@example.com", requester_name="Linus", number=1043, title="Cannot log in", ticket_url=URL
    )
    assert email.kind == EmailKind.TICKET_RESOLVED
    assert email.subject == "[TCK-1043] Resolved: Cannot log in"
    for fact in ("Hello Linus,", "TCK-1043", "Title: Cannot log in", "resolved", URL):
        assert fact in email.text, fact
    assert "Cannot log in" in email.html


def test_windows_newlines_in_bodies_become_br() -> None:
    email = ticket_received_email(
        to="req@example.com",
        requester_name="L",
        number=1,
        title="t",
        priority="low",
        category="other",
        summary="one\r\ntwo\rthree\n\n\n\nfour",
        ticket_url=URL,
        assignee_name=None,
    )
    assert "one\ntwo\nthree\n\nfour" in email.text
    assert "\r" not in email.text and "\r" not in email.html
    assert "one<br>\ntwo<br>\nthree<br>\n<br>\nfour" in email.html


def test_ticket_number_format() -> None:
    assert format_ticket_number(1042) == "TCK-1042"
    assert format_ticket_number("TCK-9") == "TCK-9"
    assert format_ticket_number("TCK-9\r\nX: y") == "TCK-9 X: y"


BUILDERS: list[Callable[[], OutgoingEmail]] = [
    lambda: welcome_email(to="a@example.com", name="A", app_url=URL),
    lambda: ticket_resolved_email(to="a@example.com", requester_name="A", number=1, title="t", ticket_url=URL),
]


@pytest.mark.parametrize("build", BUILDERS)
def test_builders_are_pure(build: Callable[[], OutgoingEmail]) -> None:
    assert build() == build()
