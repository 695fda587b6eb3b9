"""The SLA mails: what they say, and that ticket text stays text (escaped, one-line subjects)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticketing_app.domain import EmailKind, SlaTarget
from ticketing_app.mail.sla_messages import sla_email
from ticketing_app.services.sla import clock_text

TITLE = 'Refund <script>alert("x")</script>\r\nBcc: victim@example.com'


@pytest.mark.parametrize(
    ("breached", "kind", "words"),
    [(False, EmailKind.SLA_WARNING, "SLA warning"), (True, EmailKind.SLA_BREACHED, "SLA breached")],
)
def test_sla_mail(breached: bool, kind: EmailKind, words: str) -> None:
    email = sla_email(
        breached=breached,
        to="moe@example.com",
        recipient_name="Moe <b>Moderator</b>",
        target=SlaTarget.FIRST_RESPONSE,
        number=1042,
        title=TITLE,
        priority="high",
        due="2026-12-03 14:00 Europe/Berlin",
        assignee_name="Moe",
        ticket_url="https://help.example.com/tickets/7",
    )
    assert email.kind == kind and email.to == "moe@example.com"
    assert email.subject.startswith(f"[TCK-1042] {words} (first response")
    assert "\n" not in email.subject and "\r" not in email.subject  # no header injection through the title
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert "<b>Moderator</b>" not in email.html
    assert "2026-12-03 14:00 Europe/Berlin" in email.text and "https://help.example.com/tickets/7" in email.text


NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("due", "breached", "stopped", "paused", "expected"),
    [
        (None, False, False, False, ""),
        (NOW + timedelta(hours=3, minutes=20), False, False, False, "3h 20m left"),
        (NOW - timedelta(hours=1), True, False, False, "overdue 1h"),
        (NOW + timedelta(hours=1), False, False, True, "paused"),
        (NOW - timedelta(hours=1), True, False, True, "paused (overdue)"),
        (NOW - timedelta(hours=1), True, True, False, "missed"),
        (NOW + timedelta(hours=1), False, True, False, "met"),
    ],
)
def test_clock_text(monkeypatch: pytest.MonkeyPatch, due, breached, stopped, paused, expected) -> None:
    from ticketing_app.config import get_settings

    monkeypatch.setenv("BUSINESS_HOURS", "24/7")
    get_settings.cache_clear()
    try:
        assert clock_text(due, breached=breached, stopped=stopped, paused=paused, now=NOW) == expected
    finally:
        monkeypatch.delenv("BUSINESS_HOURS")
        get_settings.cache_clear()
