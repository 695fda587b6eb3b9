"""Reading inbound mail without a database: charsets, HTML, quoted history, auto-replies, hostile headers."""

from __future__ import annotations

import base64
from email.header import Header

import pytest

from tests.fakes.mails import mail, raw_mail
from ticketing_app.mail.inbound import html_to_text, message_id_of, parse_mail, strip_quoted


def _encoded(text: str, charset: str, cte: str = "base64") -> bytes:
    payload = text.encode(charset)
    body = base64.encodebytes(payload) if cte == "base64" else payload
    subject = Header(text.splitlines()[0], charset).encode()
    return raw_mail(
        f"From: someone@example.com\nTo: helpdesk@localhost\nSubject: {subject}\nMessage-ID: <c@x>\n"
        f"MIME-Version: 1.0\nContent-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: {cte}",
        body,
    )


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("iso-8859-1", "Grüße aus Köln, ça marche pas"),
        ("windows-1251", "Привет, не работает принтер"),
        ("shift_jis", "プリンターが動きません"),
        ("iso-2022-jp", "ログインできません"),
    ],
)
def test_bodies_and_subjects_in_other_charsets_are_decoded(charset: str, text: str) -> None:
    parsed = parse_mail(_encoded(text, charset))
    assert parsed.text == text
    assert parsed.subject == text
    assert parsed.notes == []


def test_an_unknown_charset_falls_back_to_utf8_with_a_note() -> None:
    parsed = parse_mail(
        raw_mail(
            "From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=x-klingon", "naïve".encode() + b"\n"
        )
    )
    assert parsed.text == "naïve"
    assert any("x-klingon" in note for note in parsed.notes)


def test_html_becomes_text_without_script_style_or_markup() -> None:
    text = html_to_text(
        "<style>.a{}</style><p>Dear&nbsp;team &amp; co,</p><script>alert(1)</script>"
        "<ul><li>one</li><li>two</li></ul><noscript>hidden</noscript><p>bye</p>"
    )
    assert text == "Dear team & co,\n\n- one\n\n- two\n\nbye"


def test_the_plain_part_wins_over_the_html_part() -> None:
    parsed = parse_mail(mail(body="plain words\n", html="<p>html words</p>"))
    assert parsed.text == "plain words"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Thanks!\n\nOn Mon, 1 Dec 2026 at 10:00, Helpdesk <h@x> wrote:\n> old\n> older", "Thanks!"),
        ("Danke\n\nAm 01.12.2026 um 10:00 schrieb Helpdesk <h@x>:\n> alt", "Danke"),
        ("Fixed.\n\n-- \nJane\nACME Corp", "Fixed."),
        ("Fixed.\n\nSent from my iPhone", "Fixed."),
        ("See:\n- step one\n- step two", "See:\n- step one\n- step two"),
        ("Answer on top\n\n> quoted at the end\n> more", "Answer on top"),
    ],
)
def test_quoted_history_and_signatures_are_cut(body: str, expected: str) -> None:
    assert strip_quoted(body) == expected


def test_a_reply_that_is_only_a_quote_is_kept_whole() -> None:
    assert strip_quoted("> only a quote") == "> only a quote"


def test_reply_headers_and_recipients_are_read() -> None:
    parsed = parse_mail(
        mail(
            sender='"Doe, Jane" <Jane.Doe@Example.COM>',
            to="Helpdesk <helpdesk+abc@localhost>, other@example.com",
            headers={
                "Cc": "cc@example.com",
                "In-Reply-To": "<newest@x>",
                "References": "<root@x> <older@x> <newest@x>",
                "X-Helpdesk-Token": "ABCDEF",
            },
        )
    )
    assert (parsed.from_address, parsed.from_name) == ("jane.doe@example.com", "Doe, Jane")
    assert parsed.recipients == ["helpdesk+abc@localhost", "other@example.com", "cc@example.com"]
    assert parsed.references == ["<newest@x>", "<older@x>", "<root@x>"]
    assert parsed.helpdesk_token == "abcdef"
    assert parsed.auto_reply is None


def test_encoded_words_cannot_inject_header_lines() -> None:
    parsed = parse_mail(
        raw_mail(
            "From: =?utf-8?q?Eve=0D=0ABcc:_x@y?= <eve@example.com>\n"
            "Subject: =?utf-8?b?" + base64.b64encode(b"Hi\r\nX-Injected: 1\r\n\r\nbody").decode() + "?=",
            b"text\n",
        )
    )
    assert parsed.subject == "Hi X-Injected: 1 body"
    assert "\n" not in parsed.from_name and "\r" not in parsed.from_name
    assert parsed.from_address == "eve@example.com"
    assert parsed.warnings == [
        "possible header injection: line breaks in the Subject, joined onto one line",
        "possible header injection: line breaks in the sender's name, joined onto one line",
    ]


def test_a_folded_subject_and_plain_html_are_no_warning() -> None:
    raw = raw_mail("From: a@example.com\nSubject: a long\n subject, folded\nContent-Type: text/html", b"<p>Hi</p>")
    parsed = parse_mail(raw)
    assert (parsed.subject, parsed.text, parsed.warnings) == ("a long subject, folded", "Hi", [])


def test_message_ids_are_read_or_made_up_from_the_bytes() -> None:
    assert message_id_of(mail(message_id="<abc@x.example>")) == "<abc@x.example>"
    raw = raw_mail("From: a@example.com\nSubject: none", b"x\n")
    assert message_id_of(raw) == message_id_of(raw)
    assert message_id_of(raw).endswith("@inbound.invalid>") and message_id_of(raw) != message_id_of(raw + b"y")


def test_binary_garbage_is_not_a_crash() -> None:
    parsed = parse_mail(bytes(range(256)) * 20)
    assert parsed.from_address == ""
