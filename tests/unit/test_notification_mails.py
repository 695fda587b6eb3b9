"""The conversation's mails (pure builders) and the extra headers the sender writes."""

from __future__ import annotations

import email
import email.policy

import pytest

from ticketing_app.mail import messages
from ticketing_app.mail.sender import SmtpSender, render

URL = "https://help.example.com/tickets/7"
STOP = "https://help.example.com/api/unsubscribe?token=abc234"


def reply(**overrides) -> messages.OutgoingEmail:
    values = {
        "to": "req@example.com",
        "recipient_name": "Rita",
        "author_name": "Mo <b>",
        "number": 1042,
        "title": "Printer\r\nBcc: x@example.com",
        "body": "<script>alert(1)</script>\r\nsecond & third",
        "ticket_url": URL,
        "from_requester": False,
        "files": [messages.FileLink(name='<img src=x onerror="1">.png', url=f"{URL}#attachment-3")],
        "unsubscribe_url": STOP,
    }
    return messages.ticket_reply_email(**{**values, **overrides})


def test_a_reply_mail_shows_the_reply_escaped_with_its_lines_files_and_unsubscribe_link() -> None:
    mail = reply()
    assert mail.kind == "ticket_reply"
    assert mail.subject == "[TCK-1042] New reply: Printer Bcc: x@example.com"
    assert "<script>alert(1)</script>\nsecond & third" in mail.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>\nsecond &amp; third" in mail.html
    assert "<script" not in mail.html and "<img" not in mail.html and "Mo &lt;b&gt;" in mail.html
    assert f'href="{URL}#attachment-3"' in mail.html and "&lt;img src=x onerror=&quot;1&quot;&gt;.png" in mail.html
    assert f"{URL}#attachment-3" in mail.text and "log in to open them" in mail.text
    assert f"Unsubscribe: {STOP}" in mail.text and f'href="{STOP}"' in mail.html
    assert reply(from_requester=True).kind == "requester_reply"
    assert "Unsubscribe" not in reply(unsubscribe_url=None).text


def test_a_file_link_must_be_an_http_link() -> None:
    with pytest.raises(ValueError, match="http"):
        reply(files=[messages.FileLink(name="x", url="javascript:alert(1)")])


def test_status_reopen_and_digest_mails() -> None:
    status = messages.ticket_status_email(
        to="r@example.com",
        recipient_name="R",
        actor_name="Mo",
        number=7,
        title="T",
        new_status="open",
        ticket_url=URL,
        unsubscribe_url=STOP,
    )
    assert status.subject == "[TCK-7] Reopened: T" and "Mo marked your ticket TCK-7 as reopened." in status.text
    reopened = messages.ticket_reopened_email(
        to="m@example.com", recipient_name="M", actor_name="Rita", number=7, title="T", ticket_url=URL
    )
    assert reopened.kind == "ticket_reopened" and "Rita reopened ticket TCK-7" in reopened.text
    digest = messages.admin_digest_email(
        to="a@example.com",
        recipient_name="Ada",
        period="2026-12-01 00:00 UTC to 2026-12-02 00:00 UTC",
        unassigned=[messages.TicketLine(number=7, title="<b>x</b>", url=URL, waiting_since="2026-12-01 10:00 UTC")],
        unassigned_total=60,
        dead_jobs=[messages.DeadJobLine(job_id=3, kind="triage", error="Err: <x>\nmore", died_at="2026-12-01")],
        dead_total=1,
        admin_url="https://help.example.com/admin",
        unsubscribe_url=STOP,
    )
    assert digest.subject == "Helpdesk digest: 60 unassigned ticket(s), 1 dead job(s)"
    assert "and 59 more" in digest.text and "Err: <x> more" in digest.text
    assert "&lt;b&gt;x&lt;/b&gt;" in digest.html and "<b>x" not in digest.html and "Err: &lt;x&gt;" in digest.html


def sender() -> SmtpSender:
    return SmtpSender(host="localhost", port=25, user=None, password=None, security="none", mail_from="h@example.com")


def built(headers: tuple[tuple[str, str], ...]) -> email.message.Message:
    mail = messages.OutgoingEmail(to="r@example.com", subject="s", text="t", html="h", kind="x", headers=headers)
    msg, _ = sender().build_message(mail, "<1@example.com>")
    return email.message_from_bytes(render(msg), policy=email.policy.default)


def test_extra_headers_are_written_on_one_line_each() -> None:
    long_url = "<https://help.example.com/api/unsubscribe?token=" + "a" * 120 + ">"
    parsed = built(
        (
            ("Reply-To", "support+tok@example.com"),
            ("In-Reply-To", "<ticket-1@example.com>"),
            ("List-Unsubscribe", long_url),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        )
    )
    assert parsed["Reply-To"] == "support+tok@example.com"
    assert parsed["In-Reply-To"] == "<ticket-1@example.com>"
    assert parsed["List-Unsubscribe"] == long_url  # not folded onto a continuation line
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(
    "headers",
    [
        (("X-Helpdesk-Token", "abc\r\nBcc: evil@example.com"),),
        (("X-Helpdesk-Token", "abc\nBcc: evil@example.com"),),
        (("X-Helpdesk-Token", "abc\rx"),),
        (("X-Helpdesk-Token", "abc\u2028x"),),
        (("Bcc", "evil@example.com"),),
        (("To", "evil@example.com"),),
        (("X-Bad Name", "x"),),
        (("X-Bad:Name", "x"),),
        (("X-A", "1"), ("x-a", "2")),
        (("X-A", "café"),),
        (("Reply-To", "a@example.com, evil@example.com"),),
    ],
)
def test_a_header_that_could_inject_or_override_is_refused(headers) -> None:
    with pytest.raises(ValueError):
        built(headers)
