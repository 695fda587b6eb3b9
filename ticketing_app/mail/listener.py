"""The two ways mail comes in: an SMTP listener (aiosmtpd) and IMAP polling (stdlib imaplib).

Both only store the raw mail (services.inbound.receive: one INSERT with its job); the job loop does the rest.
- SMTP: recipients outside SUPPORT_ADDRESS's domain get 550 (no open relay), a mail over INBOUND_MAX_MB 552
  (aiosmtpd's data_size_limit), and 250 only once the raw row has committed; a database failure answers
  451, so the sending server tries again later. A duplicate (same Message-ID) is answered 250 and dropped.
- IMAP: unseen mails of IMAP_FOLDER are fetched without marking them (BODY.PEEK), stored, and flagged
  \\Seen only after the commit; a crash in between fetches the mail again next time, and the Message-ID
  drops the copy. Mails over INBOUND_MAX_MB are flagged \\Seen without being fetched (with a log line).
  imaplib was chosen over imapclient: three commands are all we need, and it adds no dependency.
- TLS (IMAP_SECURITY ssl or starttls) always verifies the certificate and the host name, against IMAP_CA_FILE
  when set (a self-signed or private-CA server), else the system's trust store. A refused certificate is one
  log line per poll and nothing is fetched: the mails wait on the server. STARTTLS never falls back to plain.
IMAP_PASSWORD is a SecretStr and goes only to LOGIN: never into a log line or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import re
import ssl
from typing import Any

from aiosmtpd.controller import Controller

from ticketing_app.config import Settings, get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import InboundSource
from ticketing_app.errors import TooLarge
from ticketing_app.mail.inbound import one_line

__all__ = ["InboundSmtpListener", "poll_imap"]

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 50
IMAP_BATCH = 200  # mails per poll; the rest come with the next one
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


def _store(raw: bytes, source: InboundSource, mail_from: str | None, rcpt_tos: list[str]) -> int | None:
    from ticketing_app.services import inbound

    with session_scope() as session:
        return inbound.receive(session, raw, source=source, envelope_from=mail_from, envelope_to=rcpt_tos)


class _Handler:
    """aiosmtpd's hooks: who we accept mail for, and storing it before saying yes."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        local, at, domain = address.rpartition("@")
        if not at or not local or domain.lower() != self.domain:
            log.warning("inbound SMTP from %s: refused recipient %s (not our domain)", session.peer, one_line(address))
            return f"550 5.7.1 Relaying denied: this server accepts mail for @{self.domain} only"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        raw = data if isinstance(data, bytes) else str(data).encode("utf-8", errors="surrogateescape")
        mail_from = str(envelope.mail_from or "")
        rcpt_tos = [str(address) for address in envelope.rcpt_tos]
        try:
            stored = await asyncio.get_running_loop().run_in_executor(
                None, _store, raw, InboundSource.SMTP, mail_from, rcpt_tos
            )
        except TooLarge as exc:
            log.warning("inbound SMTP from %s: refused %s bytes: %s", session.peer, len(raw), exc.message)
            return "552 5.3.4 Message too big"
        except Exception:
            log.exception(
                "inbound SMTP from %s: storing a mail of %s bytes failed; answered 451", session.peer, len(raw)
            )
            return "451 4.3.0 Temporary failure, please try again later"
        if stored is None:
            log.info("inbound SMTP from %s: duplicate delivery (Message-ID seen before), dropped", session.peer)
        else:
            log.info("inbound SMTP from %s: stored mail %s (%s bytes)", session.peer, stored, len(raw))
        return "250 2.0.0 OK: queued"


class InboundSmtpListener:
    """An aiosmtpd server on INBOUND_SMTP_HOST:INBOUND_SMTP_PORT (its own thread and event loop)."""

    def __init__(self, host: str | None = None, port: int | None = None, settings: Settings | None = None) -> None:
        settings = settings or get_settings()
        self.host = host or settings.inbound_smtp_host
        port = port or settings.inbound_smtp_port
        if not port:
            raise ValueError("INBOUND_SMTP_PORT is not set")
        self.port = port
        self._controller = Controller(
            _Handler(settings.support_address.partition("@")[2]),
            hostname=self.host,
            port=self.port,
            data_size_limit=settings.inbound_max_bytes(),  # aiosmtpd answers 552 beyond it
            enable_SMTPUTF8=True,  # senders with non-ASCII addresses (RFC 6531); the bytes are stored as they came
            server_hostname=settings.support_address.partition("@")[2] or "localhost",
            ready_timeout=10.0,
        )

    def start(self) -> InboundSmtpListener:
        self._controller.start()
        log.info("inbound SMTP listening on %s:%s", self.host, self.port)
        return self

    def stop(self) -> None:
        self._controller.stop()
        log.info("inbound SMTP on %s:%s stopped", self.host, self.port)


def _imap_connect(settings: Settings) -> imaplib.IMAP4:
    assert settings.imap_host
    port = settings.resolved_imap_port()
    timeout = settings.imap_timeout_seconds
    if settings.imap_security == "ssl":
        return imaplib.IMAP4_SSL(settings.imap_host, port, ssl_context=_tls_context(settings), timeout=timeout)
    client = imaplib.IMAP4(settings.imap_host, port, timeout=timeout)
    if settings.imap_security == "starttls":
        try:
            client.starttls(_tls_context(settings))  # raises when not offered: never goes on in plain text
        except BaseException:
            with contextlib.suppress(OSError):
                client.shutdown()
            raise
    return client


def _tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificate and host name verified; against IMAP_CA_FILE when set, else the system's trust store."""
    return ssl.create_default_context(cafile=settings.imap_ca_file or None)


def _connect_failure(exc: Exception) -> str:
    """Why connecting failed, for the log line (nothing of the settings' secrets is in any of these)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the server's TLS certificate was refused ({exc.verify_message}); nothing was fetched, the mails stay "
            "on the server. Trust its CA with IMAP_CA_FILE, or fix IMAP_HOST to the name the certificate is for"
        )
    return f"{type(exc).__name__}: {one_line(str(exc))[:200]}"


def poll_imap(settings: Settings | None = None) -> int:
    """Store the unseen mails of IMAP_FOLDER (flagging each \\Seen after its commit); returns how many were new.

    Errors are logged (without the password) and end this poll; the next one tries again.
    """
    settings = settings or get_settings()
    if not settings.imap_host:
        return 0
    where = f"{settings.imap_user}@{settings.imap_host}:{settings.resolved_imap_port()}/{settings.imap_folder}"
    stored = 0
    try:
        client = _imap_connect(settings)
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        log.warning("IMAP %s: cannot connect: %s", where, _connect_failure(exc))
        return 0
    try:
        password = settings.imap_password.get_secret_value() if settings.imap_password else ""
        client.login(settings.imap_user or "", password)
        status, _ = client.select(_quoted(settings.imap_folder))
        if status != "OK":
            log.warning("IMAP %s: cannot select the folder", where)
            return 0
        status, found = client.uid("SEARCH", "UNSEEN")
        uids = found[0].split() if status == "OK" and found and found[0] else []
        for uid in uids[:IMAP_BATCH]:
            stored += _take_one(client, uid.decode("ascii"), settings, where)
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        log.warning("IMAP %s: poll failed: %s: %s", where, type(exc).__name__, one_line(str(exc))[:200])
    finally:
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
    return stored


def _take_one(client: imaplib.IMAP4, uid: str, settings: Settings, where: str) -> int:
    status, meta = client.uid("FETCH", uid, "(RFC822.SIZE)")
    size_match = _SIZE.search(meta[0] if status == "OK" and meta and isinstance(meta[0], bytes) else b"")
    if size_match and int(size_match.group(1)) > settings.inbound_max_bytes():
        log.warning("IMAP %s: mail uid %s of %s bytes is over INBOUND_MAX_MB: flagged seen, not stored", where,
                    uid, size_match.group(1).decode())  # fmt: skip
        client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
        return 0
    status, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
    raw = next((item[1] for item in data or [] if isinstance(item, tuple) and len(item) > 1), None)
    if status != "OK" or not isinstance(raw, bytes):
        log.warning("IMAP %s: mail uid %s could not be fetched", where, uid)
        return 0
    try:
        new = _store(raw, InboundSource.IMAP, None, [])
    except TooLarge:
        new = None
        log.warning("IMAP %s: mail uid %s is over INBOUND_MAX_MB: flagged seen, not stored", where, uid)
    client.uid("STORE", uid, "+FLAGS", "(\\Seen)")  # only after the commit: a crash before fetches it again
    return 1 if new is not None else 0


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
