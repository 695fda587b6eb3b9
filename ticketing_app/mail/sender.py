"""Delivering composed e-mails: over SMTP (yagmail) or recorded only (no SMTP host configured).

Contract of both senders: ``send(email) -> Message-ID``. :class:`SmtpSender` raises
:class:`MailDeliveryError` for every failure (bad message, refused connection, timeout, SMTP error);
:class:`RecordingSender` never raises and never touches the network.

How yagmail is used, and why not ``yagmail.SMTP.send()`` (yagmail 0.16, ``yagmail/message.py``):
- ``get_mime_object`` attaches any content string that is an existing file path (``os.path.isfile`` then
  ``open(..., "rb")``), so user text like "/etc/hostname" would leak a server file;
- ``prepare_message`` puts every text content item into *both* the text/plain and the text/html part,
  without HTML escaping (``yagmail.raw`` only avoids the file sniffing and is still inserted unescaped into
  the HTML part), so a separate plain-text part and an escaped HTML part cannot be expressed;
- ``Client._attempt_send`` retries with ``time.sleep(3)`` / ``time.sleep(6)`` and then returns False.
So the MIME message is built here with :mod:`email` (multipart/alternative: text/plain + text/html) and
yagmail is used for the connection only: ``yagmail.SMTP(..., smtp_ssl=..., smtp_starttls=...,
smtp_skip_login=True, timeout=...)`` then ``login()`` (connect, EHLO, STARTTLS) and the rendered bytes go
out with one ``smtp.sendmail()`` on that session. No content ever passes through yagmail's content
processing, there are no hidden retries (the job system retries), and each send (or batch) uses its own session.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import smtplib
import socket
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from email.charset import BASE64, QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, getaddresses, make_msgid
from typing import Any, Literal, Protocol

import yagmail

from ticketing_app.mail.messages import OutgoingEmail
from ticketing_app.text import control_pattern

__all__ = [
    "MailDeliveryError",
    "MailSender",
    "RecordedEmail",
    "RecordingSender",
    "Security",
    "SmtpSender",
    "render",
]

logger = logging.getLogger(__name__)

Security = Literal["none", "starttls", "ssl"]
_SECURITY_MODES: tuple[str, ...] = ("none", "starttls", "ssl")
_MESSAGE_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")
_HEADER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,76}$")
# Headers the sender writes itself: an outbox row's extra headers may not replace or repeat them.
_OWN_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "auto-submitted",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "sender",
        "return-path",
    }
)
# Extra headers whose value is one address (checked and written as such).
_ADDRESS_HEADERS = frozenset({"reply-to"})
_CONTROL = control_pattern(line_separators=True)
_MAX_DETAIL_CHARS = 300


class MailDeliveryError(Exception):
    """Delivery failed. The message is safe to log and store (never contains the SMTP password).

    ``permanent`` is True only when *this message* can never be delivered, so retrying it is pointless: it
    is invalid (bad address, CR/LF in a header, bad Message-ID), or the server rejected the recipient
    (5xx to RCPT) or the content (5xx after DATA). Everything about the server or the configuration is
    temporary (``permanent`` False): refused connection, timeout, TLS/certificate errors, failed login,
    sender address refused, any 4xx. So a wrong SMTP password does not write off the queued mail; it is
    retried until the configuration is fixed (or the job's attempts run out).
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class MailSender(Protocol):
    """What the notification jobs need from a sender."""

    name: str

    def send(self, email: OutgoingEmail, *, message_id: str | None = None) -> str:
        """Deliver ``email`` and return its Message-ID."""
        ...

    def send_many(self, items: Sequence[tuple[OutgoingEmail, str | None]]) -> list[str | MailDeliveryError]:
        """Deliver several e-mails (one connection where that applies); an outcome per e-mail, in order."""
        ...


def _parse_mailbox(value: str, what: str) -> tuple[str, str]:
    """'Name <addr>' or 'addr' -> (name, addr). Raises ValueError for anything that is not one address."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be an e-mail address")
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"{what} must not contain line breaks")
    pairs = getaddresses([value.strip()])
    if len(pairs) != 1:
        raise ValueError(f"{what} must be a single e-mail address")
    name, addr = pairs[0]
    local, _, domain = addr.rpartition("@")
    if not local or not domain or any(ch.isspace() for ch in addr):
        raise ValueError(f"{what} must be a single e-mail address")
    return name, addr


def _domain_of(addr: str) -> str:
    domain = addr.rpartition("@")[2].strip("[]")
    return domain if re.fullmatch(r"[A-Za-z0-9.-]+", domain) else "localhost"


def _new_message_id(domain: str) -> str:
    return make_msgid(domain=domain)


@functools.cache
def _local_hostname() -> str:
    """The EHLO name (smtplib would call getfqdn() on every connection; a slow resolver would add up)."""
    try:
        return socket.getfqdn() or "localhost"
    except OSError:  # pragma: no cover - defensive
        return "localhost"


_UTF8 = Charset("utf-8")
_UTF8.header_encoding = BASE64
_UTF8.body_encoding = QP
# CRLF on the wire; mangle_from_=False: compat32 would otherwise turn body lines "From ..." into ">From ..."
_WIRE_POLICY = compat32.clone(linesep="\r\n", mangle_from_=False)


def _header_value(value: str, what: str) -> str:
    """A header value must be one line: CR, LF and other control characters are refused (the compat32
    email API used here would otherwise write them out as-is, i.e. allow header injection)."""
    if not isinstance(value, str) or _CONTROL.search(value):
        raise ValueError(f"{what} must be a single line without control characters")
    return value


def _extra_headers(email: OutgoingEmail) -> list[tuple[str, str]]:
    """The e-mail's extra headers, checked: a plain header name not written by the sender itself, a value of
    one line without control characters (no CR/LF injection), ASCII (they carry addresses, ids and URLs)."""
    checked: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in getattr(email, "headers", ()) or ():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ValueError(f"invalid header name {str(name)[:40]!r}")
        lowered = name.lower()
        if lowered in _OWN_HEADERS or lowered in seen:
            raise ValueError(f"header {name} may not be set or repeated")
        seen.add(lowered)
        value = _header_value(value, name)
        if not value.isascii() or len(value) > 900:
            raise ValueError(f"{name} must be ASCII and at most 900 characters")
        checked.append((name, _format_mailbox(value) if lowered in _ADDRESS_HEADERS else value))
    return checked


class _Unfolded:
    """A checked one-line ASCII header value written as it is: compat32 would fold a long unbroken value (a
    List-Unsubscribe URL) onto a continuation line, which naive parsers read with a leading space."""

    def __init__(self, value: str) -> None:
        self.value = value

    def encode(self, linesep: str = "\n", maxlinelen: int | None = None) -> str:
        return self.value

    def __str__(self) -> str:
        return self.value


def _encoded_header(value: str) -> Header:
    """RFC 2047 encoding where needed. (email.policy.SMTP's folder drops or moves spaces between encoded
    words when it folds a long non-ASCII subject on Python 3.11; email.header.Header does not.)"""
    if value.isascii() and "=?" not in value:
        return Header(value, "us-ascii", maxlinelen=76, header_name="Subject")
    return Header(value, _UTF8, maxlinelen=76, header_name="Subject")


def _format_mailbox(value: str) -> str:
    name, addr = _parse_mailbox(value, "address")
    return formataddr((name, addr), charset="utf-8") if name else addr


def _text_part(body: str, subtype: str) -> MIMEText:
    if not isinstance(body, str):
        raise TypeError("e-mail bodies must be str")
    # typeshed says str; the stdlib takes a Charset too, which is how quoted-printable is chosen.
    return MIMEText(body.replace("\r\n", "\n").replace("\r", "\n"), subtype, _UTF8)  # type: ignore[arg-type]


def render(msg: Message) -> bytes:
    """The message as sent on the wire (CRLF line endings, 7-bit: every header and body is encoded)."""
    out = io.BytesIO()
    BytesGenerator(out, policy=_WIRE_POLICY).flatten(msg)
    return out.getvalue()


class SmtpSender:
    """Delivers over SMTP; one session per :meth:`send` or :meth:`send_many` (a batch of e-mails).

    - ``security``: "none" (plain, e.g. a local relay), "starttls" (EHLO + STARTTLS, typically port 587)
      or "ssl" (implicit TLS, typically port 465). TLS certificates are verified
      (``ssl.create_default_context()``) unless a different ``ssl_context`` is given.
    - Login happens only when a password is set, as ``user`` (or the ``mail_from`` address when ``user``
      is empty). Without a password the session is anonymous (``smtp_skip_login=True``): yagmail never
      reaches its keyring / interactive-prompt fallback.
    - ``timeout_seconds`` applies to the connection and to every single read/write (so a refused or
      silent server fails after at most about that long; a server that answers each command just under
      the timeout could stretch one send to a few times it). There are no internal retries.
    - Blocking: call it from a worker thread (``asyncio.to_thread``) when running inside an event loop.
    """

    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str | None,
        password: str | None,
        security: Security,
        mail_from: str,
        timeout_seconds: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not host or any(ch.isspace() for ch in host):
            raise ValueError("SMTP host must be a host name or address")
        if security not in _SECURITY_MODES:
            raise ValueError(f"SMTP security must be one of {', '.join(_SECURITY_MODES)}")
        if not (0 < int(port) < 65536):
            raise ValueError("SMTP port must be between 1 and 65535")
        if not timeout_seconds or timeout_seconds <= 0:
            raise ValueError("SMTP timeout must be positive")
        self.host = host
        self.port = int(port)
        self.security: Security = security
        self.timeout_seconds = float(timeout_seconds)
        self._from_name, self._from_addr = _parse_mailbox(mail_from, "mail_from")
        self._from_header = _format_mailbox(mail_from)
        self._domain = _domain_of(self._from_addr)
        self._password = password or None
        self._login_user = (user or "").strip() or self._from_addr
        self._ssl_context = ssl_context
        if user and not self._password:
            logger.warning("SMTP user is set but no password: sending without login")
        if self._password and security == "none" and host not in ("localhost", "127.0.0.1", "::1"):
            logger.warning("SMTP login over an unencrypted connection to %s", host)

    def __repr__(self) -> str:  # never shows the password
        return (
            f"SmtpSender(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"mail_from={self._from_header!r}, login={'yes' if self._password else 'no'})"
        )

    # -- message --------------------------------------------------------------------------------

    def build_message(self, email: OutgoingEmail, message_id: str) -> tuple[Message, str]:
        """The MIME message :meth:`send` delivers (multipart/alternative: text/plain + text/html, both
        UTF-8 quoted-printable) and the envelope recipient.

        Raises ValueError / TypeError for an invalid message (not one address, CR/LF in a header, ...).
        """
        _, rcpt = _parse_mailbox(email.to, "recipient")
        subject = _header_value(email.subject, "subject")
        msg = MIMEMultipart("alternative")
        msg["From"] = self._from_header
        msg["To"] = _format_mailbox(email.to)
        msg["Subject"] = _encoded_header(subject)  # type: ignore[assignment] # compat32 messages take a Header
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = _header_value(message_id, "Message-ID")
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders should not answer
        for name, value in _extra_headers(email):
            msg[name] = _Unfolded(value)  # type: ignore[assignment] # compat32 messages take a Header-like value
        msg.attach(_text_part(email.text, "plain"))
        msg.attach(_text_part(email.html, "html"))
        return msg, rcpt

    # -- delivery -------------------------------------------------------------------------------

    def _client(self) -> Any:
        """A yagmail client for one session, with every flag explicit."""
        context = self._ssl_context or ssl.create_default_context()
        connection_kwargs: dict[str, Any] = {
            "timeout": self.timeout_seconds,
            "local_hostname": _local_hostname(),
        }
        if self.security == "ssl":
            connection_kwargs["context"] = context  # smtplib.SMTP_SSL(..., context=...)
        client = yagmail.SMTP(
            user=self._from_addr,  # only so yagmail does not look for ~/.yagmail; we never use its From
            password=None,
            host=self.host,
            port=self.port,
            smtp_ssl=self.security == "ssl",
            # a dict is passed on as smtp.starttls(**dict); False disables STARTTLS explicitly
            smtp_starttls={"context": context} if self.security == "starttls" else False,
            smtp_skip_login=True,  # we log in ourselves (login name may differ from mail_from)
            soft_email_validation=False,  # addresses are validated here
            **connection_kwargs,
        )
        client.set_logging(None)  # yagmail otherwise installs its own stderr handler on every client
        return client

    def send(self, email: OutgoingEmail, *, message_id: str | None = None) -> str:
        """Deliver ``email`` in a new SMTP session. Returns the Message-ID (``message_id`` if given,
        e.g. one stored with the outbox row so a retry reuses it; otherwise a new unique one).
        Raises :class:`MailDeliveryError` on any failure."""
        outcome = self.send_many([(email, message_id)])[0]
        if isinstance(outcome, MailDeliveryError):
            raise outcome
        return outcome

    def send_many(self, items: Sequence[tuple[OutgoingEmail, str | None]]) -> list[str | MailDeliveryError]:
        """Deliver several e-mails in one SMTP session; one outcome per e-mail, in order: its Message-ID, or
        the :class:`MailDeliveryError` that stopped it. A refused recipient or message fails that e-mail
        only; a lost connection fails the ones not sent yet. Never raises for a delivery problem."""
        outcomes: list[str | MailDeliveryError | None] = [None] * len(items)
        ready: list[tuple[int, str, str, bytes, str]] = []  # (index, recipient, Message-ID, bytes, kind)
        for index, (email, message_id) in enumerate(items):
            try:
                ready.append((index, *self._prepare(email, message_id)))
            except MailDeliveryError as exc:
                outcomes[index] = exc
        if ready:
            client = None
            try:
                client = self._client()
                client.login()  # connect (+ EHLO/STARTTLS); no login because of smtp_skip_login
                smtp = client.smtp
                if self._password:
                    smtp.login(self._login_user, self._password)
                for index, rcpt, msg_id, data, kind in ready:
                    try:
                        refused = smtp.sendmail(self._from_addr, [rcpt], data)
                        if refused:  # only possible with several recipients; be strict anyway
                            raise smtplib.SMTPRecipientsRefused(refused)
                    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
                        outcomes[index] = self._error_for(exc)  # this message only: the session goes on
                        continue
                    outcomes[index] = msg_id
                    logger.info("mail sent: kind=%s to=%s message_id=%s", kind, rcpt, msg_id)
            except Exception as exc:  # noqa: BLE001 - every failure becomes MailDeliveryError
                error = self._error_for(exc)
                for index, *_ in ready:
                    if outcomes[index] is None:
                        outcomes[index] = error
            finally:
                if client is not None:
                    _close_quietly(client)
        return [outcome for outcome in outcomes if outcome is not None]

    def _prepare(self, email: OutgoingEmail, message_id: str | None) -> tuple[str, str, bytes, str]:
        """(recipient, Message-ID, wire bytes, kind) of a valid e-mail; a permanent error otherwise."""
        msg_id = message_id if message_id is not None else _new_message_id(self._domain)
        if not isinstance(msg_id, str) or not _MESSAGE_ID.match(msg_id):
            raise MailDeliveryError("invalid Message-ID (expected <left@right>)", permanent=True)
        kind = getattr(email, "kind", "?")
        try:
            msg, rcpt = self.build_message(email, msg_id)
            return rcpt, msg_id, render(msg), kind
        except (ValueError, TypeError, UnicodeError, AttributeError) as exc:
            raise MailDeliveryError(f"invalid e-mail ({kind}): {exc}", permanent=True) from None

    def _error_for(self, exc: BaseException) -> MailDeliveryError:
        error = self._delivery_error(exc)
        error.__cause__ = None if self._leaks_password(exc) else exc
        return error

    def _leaks_password(self, exc: BaseException) -> bool:
        return self._password is not None and self._password in repr(exc)

    def _delivery_error(self, exc: BaseException) -> MailDeliveryError:
        permanent = False
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            permanent = bool(codes) and all(int(code) >= 500 for code in codes)
            detail = "; ".join(f"{code} {_decode(resp)}" for code, resp in exc.recipients.values())
        elif isinstance(exc, smtplib.SMTPResponseException):
            # only a content rejection after DATA is about the message; auth / MAIL FROM / HELO errors
            # are configuration problems
            permanent = isinstance(exc, smtplib.SMTPDataError) and int(exc.smtp_code) >= 500
            detail = f"{exc.smtp_code} {_decode(exc.smtp_error)}"
        elif isinstance(exc, TimeoutError):
            detail = f"timed out after {self.timeout_seconds:g}s"
        else:
            detail = str(exc) or exc.__class__.__name__
        detail = " ".join(detail.split())
        if self._password:
            detail = detail.replace(self._password, "***")
        if len(detail) > _MAX_DETAIL_CHARS:
            detail = detail[: _MAX_DETAIL_CHARS - 1] + "\u2026"
        return MailDeliveryError(
            f"SMTP delivery via {self.host}:{self.port} ({self.security}) failed: {exc.__class__.__name__}: {detail}",
            permanent=permanent,
        )


def _decode(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _close_quietly(client: Any) -> None:
    """QUIT and close the session; a failure here does not undo a delivery that already happened."""
    client.is_closed = True  # keeps yagmail's __del__ from trying again
    smtp = getattr(client, "smtp", None)
    if smtp is None:
        return
    try:
        smtp.quit()
    except Exception:  # noqa: BLE001
        with contextlib.suppress(Exception):
            smtp.close()


@dataclass(frozen=True, slots=True)
class RecordedEmail:
    message_id: str
    email: OutgoingEmail


class RecordingSender:
    """Used when no SMTP host is configured: logs one line per e-mail and keeps the last few in memory.

    Never touches the network and never raises.
    """

    name = "recorded"

    def __init__(self, *, mail_from: str = "helpdesk@localhost", keep: int = 100) -> None:
        try:
            self._domain = _domain_of(_parse_mailbox(mail_from, "mail_from")[1])
        except ValueError:
            self._domain = "localhost"
        self.sent: deque[RecordedEmail] = deque(maxlen=max(0, keep))

    def send(self, email: OutgoingEmail, *, message_id: str | None = None) -> str:
        msg_id = message_id
        if not isinstance(msg_id, str) or not _MESSAGE_ID.match(msg_id):
            msg_id = _new_message_id(self._domain)
        logger.info(
            "mail recorded, not sent (no SMTP host): kind=%s to=%r subject=%r message_id=%s",
            getattr(email, "kind", "?"),
            getattr(email, "to", "?"),
            getattr(email, "subject", "?"),
            msg_id,
        )
        self.sent.append(RecordedEmail(message_id=msg_id, email=email))
        return msg_id

    def send_many(self, items: Sequence[tuple[OutgoingEmail, str | None]]) -> list[str | MailDeliveryError]:
        return [self.send(email, message_id=message_id) for email, message_id in items]
