"""Which sender delivers the outbox, and how an outbox row becomes a message and records its delivery."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

from ticketing_app.config import Settings, get_settings
from ticketing_app.domain import ACCOUNT_EMAIL_KINDS, EmailStatus
from ticketing_app.mail.messages import OutgoingEmail
from ticketing_app.mail.sender import MailSender, RecordingSender, SmtpSender
from ticketing_app.models import EmailMessage


def build_sender(settings: Settings) -> MailSender:
    """SMTP when SMTP_HOST is set; otherwise mails are recorded (stored and logged), not sent."""
    if not settings.smtp_host:
        return RecordingSender(mail_from=settings.mail_from)
    return SmtpSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        user=settings.smtp_user,
        password=settings.smtp_password,
        security=settings.smtp_security,
        mail_from=settings.mail_from,
        timeout_seconds=settings.smtp_timeout_seconds,
    )


@lru_cache
def default_sender() -> MailSender:
    return build_sender(get_settings())


def outgoing(row: EmailMessage) -> OutgoingEmail:
    return OutgoingEmail(
        to=row.to_address,
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        kind=row.kind,
        headers=tuple((row.headers or {}).items()),
    )


# The token of a single-use account link (reset, verify) in a stored mail.
_LINK_TOKEN = re.compile(r"token=[A-Za-z0-9_-]{16,}")
TOKEN_REMOVED = "token=(removed once sent)"


def mark_delivered(row: EmailMessage, sender: MailSender, message_id: str) -> None:
    row.status = EmailStatus.SENT if sender.name == "smtp" else EmailStatus.RECORDED
    if row.status == EmailStatus.SENT and row.kind in ACCOUNT_EMAIL_KINDS:
        # Only the mail carries a link's token (the database keeps its hash): once the server has it, the copy
        # kept for the outbox goes. A recorded mail (no SMTP server) keeps it: there, it is the delivery.
        row.body_text = _LINK_TOKEN.sub(TOKEN_REMOVED, row.body_text)
        row.body_html = _LINK_TOKEN.sub(TOKEN_REMOVED, row.body_html)
    row.transport = sender.name
    row.message_id = message_id
    row.sent_at = datetime.now(UTC)
    row.last_error = None
