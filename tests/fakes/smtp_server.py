"""A real SMTP server for tests: aiosmtpd's threaded Controller on 127.0.0.1, collecting what it receives.

    with FakeSmtpServer() as server:            # ephemeral port (or FakeSmtpServer(port=2525))
        sender = SmtpSender(host=server.host, port=server.port, security="none", ...)
        sender.send(email)
        [msg] = server.wait_for(1)            # ReceivedMessage
        msg.mail_from, msg.rcpt_tos, msg.message["Subject"], msg.text, msg.html, msg.attachments

    server.stop()    # connections to server.port are now refused
    server.start()   # same port again; messages received so far are kept (server.clear() to reset)

Options:
- ``reject_with="554 5.6.0 Rejected"``: answer DATA with that reply (the message is not stored);
- ``reject_recipients=["gone@example.com"]``: answer RCPT for those addresses with 550;
- ``tls_context=<server ssl.SSLContext>``: offer STARTTLS; with ``require_starttls=True`` refuse MAIL
  before it; ``implicit_tls=True``: TLS from the first byte instead (SMTPS, security "ssl");
- no AUTH by default (clients send without login); any other keyword goes to aiosmtpd's ``SMTP``, e.g.
  ``authenticator=..., auth_require_tls=False`` to accept a login (return
  ``AuthResult(success=..., handled=False)`` so a failure is answered with 535).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["FakeSmtpServer", "ReceivedMessage", "free_port"]

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free a moment ago (bound and released by the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: EmailMessage  # parsed with email.policy.default (an email.message.Message subclass)
    received_at: float = field(default_factory=time.time)

    def _body(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        if part is None:
            return ""
        # SMTP line endings are CRLF; give back the text as it was written
        return str(part.get_content()).replace("\r\n", "\n")

    @property
    def text(self) -> str:
        """The text/plain body (decoded, newlines as \\n), or "" if there is none."""
        return self._body("plain")

    @property
    def html(self) -> str:
        """The text/html body (decoded, newlines as \\n), or "" if there is none."""
        return self._body("html")

    @property
    def attachments(self) -> list[EmailMessage]:
        return list(self.message.iter_attachments())


class _Handler:
    def __init__(self, server: FakeSmtpServer) -> None:
        self._server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address.lower() in self._server.reject_recipients:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reject = self._server.reject_with
        if reject:
            return reject
        data = envelope.original_content or envelope.content
        if isinstance(data, str):  # pragma: no cover - only with decode_data=True
            data = data.encode("utf-8", errors="surrogateescape")
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self._server._record(
            ReceivedMessage(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
                data=bytes(data),
                message=parsed,
            )
        )
        return "250 OK"


class FakeSmtpServer:
    """An aiosmtpd server on 127.0.0.1 that keeps every accepted message in :attr:`messages`."""

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = LOCALHOST,
        reject_with: str | None = None,
        reject_recipients: Iterable[str] = (),
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        implicit_tls: bool = False,
        ready_timeout: float = 5.0,
        **smtp_kwargs: Any,
    ) -> None:
        self.host = host
        self.port = port if port else free_port(host)
        self.reject_with = reject_with
        self.reject_recipients = {r.lower() for r in reject_recipients}
        self._tls_context = tls_context
        self._require_starttls = require_starttls
        self._implicit_tls = implicit_tls
        self._ready_timeout = ready_timeout
        self._smtp_kwargs = smtp_kwargs
        self._controller: Controller | None = None
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> FakeSmtpServer:
        """Listen on ``self.port`` (the same port on every restart). Idempotent."""
        if self._controller is not None:
            return self
        kwargs: dict[str, Any] = dict(self._smtp_kwargs)
        if self._implicit_tls:
            if self._tls_context is None:
                raise ValueError("implicit_tls needs tls_context")
            kwargs["ssl_context"] = self._tls_context
        elif self._tls_context is not None:
            kwargs["tls_context"] = self._tls_context
            kwargs["require_starttls"] = self._require_starttls
        # A Controller cannot be restarted (stop() closes its event loop), so each start makes a new one.
        deadline = time.monotonic() + self._ready_timeout
        while True:
            controller = Controller(
                _Handler(self),
                hostname=self.host,
                port=self.port,
                ready_timeout=self._ready_timeout,
                server_hostname="fake-smtp.test",
                **kwargs,
            )
            try:
                controller.start()
                break
            except OSError:  # the port is still held by a listener that is closing: retry briefly
                controller.stop(no_assert=True)
                with contextlib.suppress(Exception):
                    controller.loop.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        self._controller = controller
        return self

    def stop(self) -> None:
        """Close the listener and every open session. Idempotent."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> FakeSmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- received messages ----------------------------------------------------------------------

    def _record(self, message: ReceivedMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot, oldest first."""
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived; return them all. Raises TimeoutError."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout=timeout):
                raise TimeoutError(f"expected {count} message(s), got {len(self._messages)}")
            return list(self._messages)
