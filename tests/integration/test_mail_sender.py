"""SmtpSender (yagmail) against a real aiosmtpd server on 127.0.0.1; RecordingSender without network."""

from __future__ import annotations

import base64
import email as email_lib
import logging
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yagmail

from tests.fakes.smtp_server import FakeSmtpServer, ReceivedMessage, free_port
from tests.fakes.tls import self_signed
from ticketing_app.mail.messages import (
    OutgoingEmail,
    assignment_email,
    ticket_received_email,
    ticket_resolved_email,
    welcome_email,
)
from ticketing_app.mail.sender import MailDeliveryError, RecordingSender, SmtpSender

MAIL_FROM = "Helpdesk <helpdesk@example.com>"
FROM_ADDR = "helpdesk@example.com"
URL = "https://help.example.com/tickets/1042"
MESSAGE_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")

SenderFactory = Callable[..., SmtpSender]


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def make_sender(smtp_server: FakeSmtpServer) -> SenderFactory:
    def make(**overrides: Any) -> SmtpSender:
        kwargs: dict[str, Any] = {
            "host": smtp_server.host,
            "port": smtp_server.port,
            "user": None,
            "password": None,
            "security": "none",
            "mail_from": MAIL_FROM,
            "timeout_seconds": 3.0,
        }
        kwargs.update(overrides)
        return SmtpSender(**kwargs)

    return make


def all_kinds(to: str = "someone@example.com") -> dict[str, OutgoingEmail]:
    return {
        "welcome": welcome_email(to=to, name="Ada", app_url="https://help.example.com/"),
        "ticket_assigned": assignment_email(
            to=to,
            assignee_name="Grace",
            number=1042,
            title="VPN drops <every> hour",
            priority="high",
            category="performance",
            summary="Disconnects hourly.\nSince the update.",
            helpful_notes="Check the DHCP lease.",
            ticket_url=URL,
            reason="skills match: vpn",
        ),
        "ticket_received": ticket_received_email(
            to=to,
            requester_name="Linus",
            number=1042,
            title="Cannot log in \u2013 caf\u00e9 \U0001f600",
            priority="medium",
            category="account_access",
            summary="SSO error.",
            ticket_url=URL,
            assignee_name="Grace",
        ),
        "ticket_resolved": ticket_resolved_email(
            to=to, requester_name="Linus", number=1042, title="Cannot log in", ticket_url=URL
        ),
    }


def leaf_parts(received: ReceivedMessage) -> list[Any]:
    return [part for part in received.message.walk() if not part.is_multipart()]


def assert_only_text_and_html(received: ReceivedMessage) -> None:
    msg = received.message
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in leaf_parts(received)] == ["text/plain", "text/html"]
    assert received.attachments == []
    assert all(p.get_content_disposition() is None for p in msg.walk())
    assert all(p.get_filename() is None for p in msg.walk())


# --------------------------------------------------------------------------------------------------
# Delivery


@pytest.mark.parametrize("kind", ["welcome", "ticket_assigned", "ticket_received", "ticket_resolved"])
def test_delivers_each_kind_with_both_parts(kind: str, smtp_server: FakeSmtpServer, make_sender: SenderFactory) -> None:
    email = all_kinds()[kind]
    assert email.kind == kind
    message_id = make_sender().send(email)

    [received] = smtp_server.wait_for(1)
    assert received.mail_from == FROM_ADDR
    assert received.rcpt_tos == ("someone@example.com",)
    msg = received.message
    assert msg["To"] == "someone@example.com"
    assert msg["From"] == MAIL_FROM
    assert msg["Subject"] == email.subject
    assert msg["Message-ID"] == message_id
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] is not None
    assert_only_text_and_html(received)
    assert received.text.rstrip("\n") == email.text.rstrip("\n")
    assert received.html.rstrip("\n") == email.html.rstrip("\n")
    assert MESSAGE_ID.match(message_id) and message_id.endswith("@example.com>")


def test_non_ascii_subject_and_body_round_trip(smtp_server: FakeSmtpServer, make_sender: SenderFactory) -> None:
    email = all_kinds()["ticket_received"]
    make_sender().send(email)
    [received] = smtp_server.wait_for(1)
    assert received.message["Subject"] == email.subject
    assert "caf\u00e9 \U0001f600" in received.text and "caf\u00e9 \U0001f600" in received.html


@pytest.mark.parametrize(
    "title",
    [
        "Cannot log in \u2013 caf\u00e9 \U0001f600 " * 6,
        "Upload of /srv/uploads/" + "a" * 120 + ".csv fails",
        "literal =?utf-8?q?not_an_encoded_word?= in the title",
        "\u65e5\u672c\u8a9e\u306e\u30c1\u30b1\u30c3\u30c8 " * 12,
    ],
)
def test_long_and_encoded_subjects_round_trip_exactly(
    title: str, smtp_server: FakeSmtpServer, make_sender: SenderFactory
) -> None:
    email = ticket_resolved_email(to="r@example.com", requester_name="R", number=7, title=title, ticket_url=URL)
    make_sender().send(email)
    [received] = smtp_server.wait_for(1)
    assert received.message["Subject"] == email.subject
    assert all(len(line) <= 998 for line in received.data.split(b"\r\n"))


def test_body_text_arrives_unchanged(smtp_server: FakeSmtpServer, make_sender: SenderFactory) -> None:
    body = (
        "line one\nFrom the logs: error 42\n.a line starting with a dot\n.\ntrailing spaces   \n"
        + "y" * 300
        + "\n\tcaf\u00e9 \U0001f600\n=?utf-8?q?x?= =3D\n"
    )
    email = OutgoingEmail(to="r@example.com", subject="s", text=body, html=f"<pre>{body}</pre>", kind="test")
    make_sender().send(email)
    [received] = smtp_server.wait_for(1)
    assert received.text == body
    assert received.html == f"<pre>{body}</pre>"
    assert all(len(line) <= 78 for line in received.data.split(b"\r\n")[1:] if not line.startswith(b"Subject"))


def test_identical_sends_get_unique_message_ids(smtp_server: FakeSmtpServer, make_sender: SenderFactory) -> None:
    sender = make_sender()
    email = all_kinds()["ticket_resolved"]
    first = sender.send(email)
    second = sender.send(email)
    assert first != second
    received = smtp_server.wait_for(2)
    assert [r.message["Message-ID"] for r in received] == [first, second]


def test_explicit_message_id_is_used(smtp_server: FakeSmtpServer, make_sender: SenderFactory) -> None:
    wanted = "<outbox-42.7f3a@example.com>"
    assert make_sender().send(all_kinds()["welcome"], message_id=wanted) == wanted
    [received] = smtp_server.wait_for(1)
    assert received.message["Message-ID"] == wanted

    with pytest.raises(MailDeliveryError) as info:
        make_sender().send(all_kinds()["welcome"], message_id="<x>\r\nBcc: a@example.com")
    assert info.value.permanent
    assert len(smtp_server.messages) == 1


def test_bare_mail_from_address(smtp_server: FakeSmtpServer, make_sender: SenderFactory) -> None:
    make_sender(mail_from="noreply@example.com").send(all_kinds()["welcome"])
    [received] = smtp_server.wait_for(1)
    assert received.message["From"] == "noreply@example.com"
    assert received.mail_from == "noreply@example.com"


def test_each_send_uses_its_own_session(smtp_server: FakeSmtpServer, make_sender: SenderFactory) -> None:
    sender = make_sender()
    sender.send(all_kinds()["welcome"])
    smtp_server.stop()  # would break a kept-open connection
    smtp_server.start()
    sender.send(all_kinds()["welcome"])
    assert len(smtp_server.wait_for(2)) == 2


# --------------------------------------------------------------------------------------------------
# yagmail's content sniffing: a string that is an existing file path must never become an attachment


@pytest.fixture
def secret_file(tmp_path: Path) -> tuple[Path, str]:
    secret = f"TOP-SECRET-{uuid.uuid4().hex}"
    path = tmp_path / "secret.txt"
    path.write_text(secret + "\n", encoding="utf-8")
    return path, secret


def test_yagmail_send_itself_would_attach_a_path(secret_file: tuple[Path, str]) -> None:
    """Canary: the yagmail behaviour the sender must avoid (yagmail/message.py get_mime_object: a content
    string that is an existing file becomes a part holding that file). If this stops failing-open, fine."""
    path, secret = secret_file
    client = yagmail.SMTP(user="a@example.com", smtp_skip_login=True, host="127.0.0.1", port=1)
    client.set_logging(None)
    _, raw = client.prepare_send(to="b@example.com", subject="x", contents=[str(path)], prettify_html=False)
    assert "secret.txt" in raw  # a part named after the file...
    assert base64.b64encode((secret + "\n").encode()).decode() in raw.replace("\n", "")  # ...with its bytes
    _, raw = client.prepare_send(to="b@example.com", subject="x", contents=["/etc/hostname"], prettify_html=False)
    assert "name*=utf-8''hostname" in raw
    # yagmail.raw avoids the file sniffing but is still copied unescaped into the HTML part
    _, raw = client.prepare_send(
        to="b@example.com", subject="x", contents=[yagmail.raw("<b>x</b>")], prettify_html=False
    )
    assert "hostname" not in raw
    parts = email_lib.message_from_string(raw).walk()
    html_part = next(p for p in parts if p.get_content_type() == "text/html")
    assert "<div><b>x</b></div>" in html_part.get_payload(decode=True).decode()


def test_paths_in_title_and_body_are_not_attached(
    smtp_server: FakeSmtpServer, make_sender: SenderFactory, secret_file: tuple[Path, str]
) -> None:
    path, secret = secret_file
    sender = make_sender()
    hostname_path = "/etc/hostname"
    assert Path(hostname_path).is_file()
    emails = [
        # builder output with every user/AI field an existing path
        assignment_email(
            to="mod@example.com",
            assignee_name=str(path),
            number=1,
            title=str(path),
            priority="high",
            category="bug",
            summary=str(path),
            helpful_notes=hostname_path,
            ticket_url=URL,
            reason=str(path),
        ),
        ticket_resolved_email(
            to="r@example.com", requester_name=hostname_path, number=2, title=hostname_path, ticket_url=URL
        ),
        # and the whole text / html / subject being exactly a path (no builder involved)
        OutgoingEmail(to="r@example.com", subject=str(path), text=str(path), html=str(path), kind="test"),
        OutgoingEmail(to="r@example.com", subject=hostname_path, text=hostname_path, html=hostname_path, kind="test"),
    ]
    for email in emails:
        sender.send(email)

    received = smtp_server.wait_for(len(emails))
    assert len(received) == len(emails)
    for item in received:
        assert_only_text_and_html(item)
        assert secret.encode() not in item.data
        assert base64.b64encode(secret.encode())[:20] not in item.data
        assert b'secret.txt"' not in item.data
    assert received[2].text.strip() == str(path)
    assert received[2].html.strip() == str(path)
    # (a subject that *starts* with a token longer than a header line is folded right after "Subject:";
    # Python's parser then keeps the folding space, mail clients drop it)
    assert received[2].message["Subject"].strip() == str(path)
    assert received[3].text.strip() == hostname_path


def test_header_injection_in_a_hand_made_email_is_refused(
    smtp_server: FakeSmtpServer, make_sender: SenderFactory
) -> None:
    bad = OutgoingEmail(
        to="r@example.com", subject="hi\r\nBcc: victim@example.com", text="t", html="<p>t</p>", kind="test"
    )
    with pytest.raises(MailDeliveryError) as info:
        make_sender().send(bad)
    assert info.value.permanent
    bad_to = OutgoingEmail(to="a@example.com, b@example.com", subject="s", text="t", html="h", kind="test")
    with pytest.raises(MailDeliveryError):
        make_sender().send(bad_to)
    time.sleep(0.1)
    assert smtp_server.messages == []


# --------------------------------------------------------------------------------------------------
# Failures


def test_server_down_fails_fast_then_recovers_on_the_same_port(
    smtp_server: FakeSmtpServer, make_sender: SenderFactory
) -> None:
    sender = make_sender(timeout_seconds=2.0)
    email = all_kinds()["ticket_assigned"]
    port = smtp_server.port
    smtp_server.stop()

    started = time.monotonic()
    with pytest.raises(MailDeliveryError) as info:
        sender.send(email)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"refused connection took {elapsed:.2f}s"
    assert not info.value.permanent
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "ConnectionRefusedError" in str(info.value)

    smtp_server.start()
    assert smtp_server.port == port
    message_id = sender.send(email)
    [received] = smtp_server.wait_for(1)
    time.sleep(0.2)  # nothing else trickles in (no hidden retry of the failed attempt)
    assert len(smtp_server.messages) == 1
    assert received.message["Message-ID"] == message_id


def test_silent_server_times_out() -> None:
    """A server that accepts the TCP connection but never greets: fails after ~timeout, not hangs."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    try:
        port = listener.getsockname()[1]
        sender = SmtpSender(
            host="127.0.0.1",
            port=port,
            user=None,
            password=None,
            security="none",
            mail_from=MAIL_FROM,
            timeout_seconds=1.0,
        )
        started = time.monotonic()
        with pytest.raises(MailDeliveryError) as info:
            sender.send(all_kinds()["welcome"])
        elapsed = time.monotonic() - started
        assert 0.8 < elapsed < 3.0, elapsed
        assert not info.value.permanent
        assert "timed out" in str(info.value)
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("554 5.6.0 Message content rejected", True), ("451 4.3.0 Try again later", False)],
)
def test_smtp_error_reply_is_a_delivery_error(reply: str, permanent: bool, make_sender: SenderFactory) -> None:
    with FakeSmtpServer(reject_with=reply) as rejecting:
        sender = make_sender(port=rejecting.port)
        with pytest.raises(MailDeliveryError) as info:
            sender.send(all_kinds()["welcome"])
        assert info.value.permanent is permanent
        assert reply.split(" ", 1)[1] in str(info.value)
        assert rejecting.messages == []


def test_rejected_recipient_is_permanent(make_sender: SenderFactory) -> None:
    with FakeSmtpServer(reject_recipients=["gone@example.com"]) as server:
        sender = make_sender(port=server.port)
        with pytest.raises(MailDeliveryError) as info:
            sender.send(all_kinds(to="gone@example.com")["welcome"])
        assert info.value.permanent
        assert "550 5.1.1" in str(info.value)
        sender.send(all_kinds(to="here@example.com")["welcome"])
        assert [m.rcpt_tos for m in server.wait_for(1)] == [("here@example.com",)]


def test_password_never_appears_in_errors(make_sender: SenderFactory) -> None:
    password = "s3cr3t-Pa55word"
    sender = make_sender(user="mailer", password=password)  # the fake server offers no AUTH
    with pytest.raises(MailDeliveryError) as info:
        sender.send(all_kinds()["welcome"])
    assert "AUTH" in str(info.value)
    texts = [str(info.value), repr(info.value), repr(sender)]
    cause: BaseException | None = info.value.__cause__
    while cause is not None:
        texts.append(repr(cause))
        cause = cause.__cause__
    assert all(password not in text for text in texts)


def test_login_uses_user_and_password(make_sender: SenderFactory) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        seen.append((auth_data.login, auth_data.password))
        # handled=False: aiosmtpd itself answers "535" on failure (its default, handled=True, answers nothing)
        return AuthResult(success=auth_data.password == b"right-password", handled=False)

    # PLAIN only, so each login is exactly one authenticator call (smtplib tries LOGIN after a failed PLAIN)
    with FakeSmtpServer(
        authenticator=authenticator, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"]
    ) as auth_server:
        good = make_sender(port=auth_server.port, user="mailer-login", password="right-password")
        good.send(all_kinds()["welcome"])
        assert len(auth_server.wait_for(1)) == 1
        assert auth_server.messages[0].mail_from == FROM_ADDR  # login name is not the sender address

        bad = make_sender(port=auth_server.port, user="mailer-login", password="wrong-password")
        with pytest.raises(MailDeliveryError) as info:
            bad.send(all_kinds()["welcome"])
        assert "wrong-password" not in str(info.value)
        assert "SMTPAuthenticationError: 535" in str(info.value)
        assert not info.value.permanent  # a configuration problem: the queued mail stays deliverable
        assert len(auth_server.messages) == 1
    assert seen == [(b"mailer-login", b"right-password"), (b"mailer-login", b"wrong-password")]


# --------------------------------------------------------------------------------------------------
# TLS (self-signed certificate for 127.0.0.1)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return context


def trusting_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


def test_starttls_delivers_and_verifies_the_certificate(
    tls_files: tuple[Path, Path], make_sender: SenderFactory
) -> None:
    with FakeSmtpServer(tls_context=server_context(tls_files), require_starttls=True) as tls_server:
        # the default context verifies certificates: a self-signed one is refused
        with pytest.raises(MailDeliveryError) as info:
            make_sender(port=tls_server.port, security="starttls").send(all_kinds()["welcome"])
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
        # security="none" does not talk to a server that requires STARTTLS
        with pytest.raises(MailDeliveryError):
            make_sender(port=tls_server.port, security="none").send(all_kinds()["welcome"])
        assert tls_server.messages == []

        sender = make_sender(port=tls_server.port, security="starttls", ssl_context=trusting_context(tls_files))
        sender.send(all_kinds()["welcome"])
        assert len(tls_server.wait_for(1)) == 1


def test_starttls_never_falls_back_to_plaintext(smtp_server: FakeSmtpServer, make_sender: SenderFactory) -> None:
    with pytest.raises(MailDeliveryError) as info:
        make_sender(security="starttls").send(all_kinds()["welcome"])  # plain server: no STARTTLS offered
    assert "STARTTLS" in str(info.value)
    assert smtp_server.messages == []


def test_implicit_tls(tls_files: tuple[Path, Path], make_sender: SenderFactory) -> None:
    with FakeSmtpServer(tls_context=server_context(tls_files), implicit_tls=True) as ssl_server:
        with pytest.raises(MailDeliveryError):
            make_sender(port=ssl_server.port, security="ssl").send(all_kinds()["welcome"])
        sender = make_sender(port=ssl_server.port, security="ssl", ssl_context=trusting_context(tls_files))
        message_id = sender.send(all_kinds()["ticket_resolved"])
        [received] = ssl_server.wait_for(1)
        assert received.message["Message-ID"] == message_id


# --------------------------------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(
    "overrides",
    [
        {"security": "tls"},
        {"mail_from": "a@example.com, b@example.com"},
        {"mail_from": "no-address"},
        {"mail_from": "Helpdesk <helpdesk@example.com>\r\nBcc: x@example.com"},
        {"port": 0},
        {"timeout_seconds": 0},
    ],
)
def test_invalid_configuration_is_refused(overrides: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 25,
        "user": None,
        "password": None,
        "security": "none",
        "mail_from": MAIL_FROM,
    }
    kwargs.update(overrides)
    with pytest.raises(ValueError):
        SmtpSender(**kwargs)


def test_sender_names() -> None:
    smtp = SmtpSender(host="127.0.0.1", port=25, user=None, password=None, security="none", mail_from=MAIL_FROM)
    assert smtp.name == "smtp"
    assert RecordingSender().name == "recorded"


# --------------------------------------------------------------------------------------------------
# RecordingSender


def test_recording_sender_never_touches_the_network(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Any] = []

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    # nothing listens on this port either; the sender must not care
    free = free_port()

    sender = RecordingSender(mail_from=MAIL_FROM)
    email = all_kinds()["ticket_assigned"]
    with caplog.at_level(logging.INFO, logger="ticketing_app.mail.sender"):
        first = sender.send(email)
        second = sender.send(email)
        reused = sender.send(email, message_id="<kept@example.com>")
        replaced = sender.send(email, message_id="not a message id")

    assert calls == []
    assert MESSAGE_ID.match(first) and MESSAGE_ID.match(second) and MESSAGE_ID.match(replaced)
    assert first != second
    assert reused == "<kept@example.com>"
    assert [r.message_id for r in sender.sent] == [first, second, reused, replaced]
    lines = [r.getMessage() for r in caplog.records if r.name == "ticketing_app.mail.sender"]
    assert len(lines) == 4
    assert "kind=ticket_assigned" in lines[0]
    assert "someone@example.com" in lines[0]
    assert email.subject in lines[0]
    assert free > 0


def test_recording_sender_keeps_only_the_last_messages() -> None:
    sender = RecordingSender(keep=2)
    for _ in range(5):
        sender.send(all_kinds()["welcome"])
    assert len(sender.sent) == 2


def test_concurrent_sends_from_threads(smtp_server: FakeSmtpServer, make_sender: SenderFactory) -> None:
    sender = make_sender()
    errors: list[BaseException] = []
    ids: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            message_id = sender.send(all_kinds()["welcome"])
            with lock:
                ids.append(message_id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(set(ids)) == 4
    assert sorted(r.message["Message-ID"] for r in smtp_server.wait_for(4)) == sorted(ids)
