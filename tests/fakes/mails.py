"""Inbound mails for tests: well-formed ones built with `email`, and hostile ones written byte by byte."""

from __future__ import annotations

import itertools
from email.message import EmailMessage
from email.utils import make_msgid

_counter = itertools.count(1)


def mail(
    *,
    sender: str = "customer@example.com",
    to: str = "helpdesk@localhost",
    subject: str = "Printer on fire",
    body: str = "It is on fire.\n",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
    attachments: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
) -> bytes:
    """A mail as a mail client would send it."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(idstring=f"t{next(_counter)}", domain="client.example")
    for name, value in (headers or {}).items():
        message[name] = value
    if html is not None and not body:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
    for filename, data in attachments:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    return bytes(message)


def raw_mail(headers: str, body: bytes) -> bytes:
    """A mail written out by hand (CRLF line ends), for what `email` would refuse to build."""
    return headers.strip().replace("\n", "\r\n").encode("ascii") + b"\r\n\r\n" + body.replace(b"\n", b"\r\n")
