"""The two real ways in: our aiosmtpd listener with smtplib as the client, and IMAP polling of a real dovecot."""

from __future__ import annotations

import logging
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fakes import dovecot
from tests.fakes.mails import mail
from tests.fakes.smtp_server import LOCALHOST, free_port
from tests.fakes.tls import self_signed
from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import InboundSource, InboundStatus
from ticketing_app.jobs.handlers import HANDLERS, on_dead
from ticketing_app.jobs.worker import drain
from ticketing_app.mail import listener as listener_module
from ticketing_app.mail.listener import InboundSmtpListener, poll_imap
from ticketing_app.models import InboundEmail, Ticket


def stored() -> list[InboundEmail]:
    with session_scope() as s:
        return list(s.scalars(select(InboundEmail).order_by(InboundEmail.id)))


@pytest.fixture()
def smtp_in(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[InboundSmtpListener]:
    monkeypatch.setenv("INBOUND_MAX_MB", "0.05")  # about 50 KB
    get_settings.cache_clear()
    server = InboundSmtpListener(host=LOCALHOST, port=free_port()).start()
    yield server
    server.stop()
    get_settings.cache_clear()


def send(server: InboundSmtpListener, raw: bytes, to: str = "helpdesk@localhost", sender: str = "c@x.example") -> None:
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.sendmail(sender, [to], raw)


# ----- SMTP -----


def test_a_mail_sent_over_smtp_is_stored_before_250_and_then_opens_a_ticket(smtp_in: InboundSmtpListener) -> None:
    send(smtp_in, mail(sender="smtp-user@example.com", subject="Sent over SMTP"))
    [row] = stored()  # already committed when sendmail returned
    assert (row.source, row.status) == (InboundSource.SMTP, InboundStatus.RECEIVED)
    assert row.envelope_to == ["helpdesk@localhost"]
    drain(HANDLERS, on_dead)
    with session_scope() as s:
        assert s.scalar(select(Ticket.title)) == "Sent over SMTP"


def test_the_listener_is_no_open_relay(smtp_in: InboundSmtpListener, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ticketing_app.mail.listener"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(smtp_in, mail(), to="victim@elsewhere.example")
    assert refused.value.recipients["victim@elsewhere.example"][0] == 550
    assert stored() == []
    assert "refused recipient victim@elsewhere.example" in caplog.text


def test_an_oversized_mail_is_refused_with_552_and_the_listener_goes_on(smtp_in: InboundSmtpListener) -> None:
    with pytest.raises(smtplib.SMTPResponseException) as refused:
        send(smtp_in, mail(body="x" * 200_000))
    assert refused.value.smtp_code == 552
    assert stored() == []
    send(smtp_in, mail())  # still serving
    assert len(stored()) == 1


def test_an_international_sender_is_accepted(smtp_in: InboundSmtpListener) -> None:
    raw = mail(sender="Jörg <jörg@bücher.example>", subject="Umlaute überall", body="Grüße\n")
    with smtplib.SMTP(smtp_in.host, smtp_in.port, timeout=10) as client:
        client.sendmail("jörg@bücher.example", ["helpdesk@localhost"], raw, mail_options=["SMTPUTF8"])
    drain(HANDLERS, on_dead)
    [row] = stored()
    assert row.envelope_from == "jörg@bücher.example"
    assert row.status == InboundStatus.PROCESSED, row.outcome


def test_a_duplicate_delivery_is_accepted_and_stored_once(smtp_in: InboundSmtpListener) -> None:
    raw = mail(message_id="<twice@client.example>")
    send(smtp_in, raw)
    send(smtp_in, raw)
    assert len(stored()) == 1


def test_a_database_failure_answers_451_so_the_sender_retries(
    smtp_in: InboundSmtpListener, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise ConnectionError("database away")

    original = listener_module._store
    monkeypatch.setattr(listener_module, "_store", broken)
    with caplog.at_level(logging.ERROR, logger="ticketing_app.mail.listener"):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(smtp_in, mail())
    assert refused.value.smtp_code == 451
    assert "answered 451" in caplog.text
    monkeypatch.setattr(listener_module, "_store", original)
    send(smtp_in, mail())
    assert len(stored()) == 1


def test_malformed_mime_over_smtp_does_not_crash_the_listener_or_the_worker(smtp_in: InboundSmtpListener) -> None:
    broken = (
        b"From: broken@example.com\r\nTo: helpdesk@localhost\r\nSubject: =?x-unknown?B?!!!?=\r\n"
        b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\nContent-Type: text/plain; charset=nonsense\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n@@@not base64\r\n--zz"
    )
    send(smtp_in, broken)
    send(smtp_in, mail(subject="After the broken one"))
    drain(HANDLERS, on_dead)
    statuses = [row.status for row in stored()]
    assert len(statuses) == 2 and InboundStatus.RECEIVED not in statuses
    assert statuses[1] == InboundStatus.PROCESSED


def test_a_bounce_with_the_null_sender_is_stored_and_ignored(smtp_in: InboundSmtpListener) -> None:
    send(smtp_in, mail(sender="someone@example.com", subject="Undeliverable: your ticket"), sender="")
    drain(HANDLERS, on_dead)
    [row] = stored()
    assert row.status == InboundStatus.IGNORED and "bounce" in (row.outcome or "")
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0


def test_mail_in_without_a_way_in_says_what_to_set(caplog: pytest.LogCaptureFixture) -> None:
    from ticketing_app import cli

    get_settings.cache_clear()
    assert cli.main(["mail-in"]) == 2
    assert "set INBOUND_SMTP_PORT" in caplog.text


def test_workers_run_the_listener_when_a_port_is_set_and_share_it_calmly(
    clean_db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ticketing_app.worker_main import build_worker, start_smtp_listener

    assert start_smtp_listener() is None  # no port: off
    port = free_port()
    monkeypatch.setenv("INBOUND_SMTP_PORT", str(port))
    monkeypatch.setenv("IMAP_HOST", "imap.invalid")
    get_settings.cache_clear()
    try:
        assert "imap" in build_worker().periodic
        stop_first = start_smtp_listener()
        assert stop_first is not None
        with caplog.at_level(logging.WARNING, logger="ticketing_app.worker_main"):
            assert start_smtp_listener() is None  # a second worker on the same host
        assert "inbound SMTP listener not started" in caplog.text
        with smtplib.SMTP(LOCALHOST, port, timeout=10) as client:
            client.sendmail("w@example.com", ["helpdesk@localhost"], mail(sender="w@example.com"))
        stop_first()
        assert len(stored()) == 1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_cli_mail_in_listens_until_interrupted(clean_db: str, database: str) -> None:
    """`python -m ticketing_app.cli mail-in` serves SMTP and stops cleanly on Ctrl-C (SIGINT)."""
    import os
    import signal

    port = free_port()
    env = {**os.environ, "DATABASE_URL": database, "INBOUND_SMTP_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ticketing_app.cli", "mail-in"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with smtplib.SMTP(LOCALHOST, port, timeout=5) as client:
                    client.sendmail("cli@example.com", ["helpdesk@localhost"], mail(sender="cli@example.com"))
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "mail-in never listened"
                time.sleep(0.2)
        assert len(stored()) == 1
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err


# ----- IMAP against dovecot -----


@pytest.fixture()
def imap_server(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dovecot.Dovecot]:
    if not dovecot.available():
        pytest.skip("dovecot is not installed (scripts/test.sh installs dovecot-imapd)")
    with dovecot.Dovecot() as server:
        for name, value in {
            "IMAP_HOST": server.host,
            "IMAP_PORT": str(server.port),
            "IMAP_USER": server.user,
            "IMAP_PASSWORD": server.password,
            "IMAP_SECURITY": "none",
            "INBOUND_MAX_MB": "0.05",
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield server
    get_settings.cache_clear()


def test_imap_polling_stores_unseen_mails_then_flags_them_seen(imap_server: dovecot.Dovecot) -> None:
    imap_server.append(mail(sender="imap-user@example.com", subject="Came by IMAP"))
    imap_server.append(mail(sender="imap-user@example.com", subject="Another one"))
    assert poll_imap() == 2
    assert all(b"\\Seen" in flags for flags in imap_server.flags())
    assert poll_imap() == 0  # nothing unseen any more
    drain(HANDLERS, on_dead)
    with session_scope() as s:
        titles = set(s.scalars(select(Ticket.title)))
        assert titles == {"Came by IMAP", "Another one"}
        assert s.scalar(select(func.count()).where(InboundEmail.source == InboundSource.IMAP)) == 2


def test_imap_mail_seen_again_after_a_crash_is_stored_once(
    imap_server: dovecot.Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored, then the poller died before flagging it: the next poll finds it unseen and drops the copy."""
    imap_server.append(mail(message_id="<crash@client.example>"))
    original_store = listener_module._store

    def store_then_die(*args: object) -> object:
        original_store(*args)  # type: ignore[arg-type]
        raise ConnectionResetError("killed after the commit")

    monkeypatch.setattr(listener_module, "_store", store_then_die)
    assert poll_imap() == 0
    assert not any(b"\\Seen" in flags for flags in imap_server.flags())
    monkeypatch.setattr(listener_module, "_store", original_store)
    assert poll_imap() == 0  # a duplicate: nothing new, but flagged now
    assert all(b"\\Seen" in flags for flags in imap_server.flags())
    assert len(stored()) == 1


def test_an_oversized_imap_mail_is_flagged_and_skipped(
    imap_server: dovecot.Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    imap_server.append(mail(body="x" * 200_000))
    with caplog.at_level(logging.WARNING, logger="ticketing_app.mail.listener"):
        assert poll_imap() == 0
    assert "over INBOUND_MAX_MB" in caplog.text
    assert stored() == [] and all(b"\\Seen" in flags for flags in imap_server.flags())


def test_a_wrong_imap_password_is_logged_without_the_password(
    imap_server: dovecot.Dovecot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("IMAP_PASSWORD", "wrong-secret-Pa55word")
    get_settings.cache_clear()
    assert "wrong-secret" not in repr(get_settings())
    with caplog.at_level(logging.DEBUG):
        assert poll_imap() == 0
    assert "IMAP support@" in caplog.text and "poll failed" in caplog.text
    assert "wrong-secret-Pa55word" not in caplog.text


def test_an_unreachable_imap_server_is_a_log_line_not_a_crash(
    clean_db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in {"IMAP_HOST": LOCALHOST, "IMAP_PORT": str(free_port()), "IMAP_SECURITY": "none"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="ticketing_app.mail.listener"):
            assert poll_imap() == 0
        assert "cannot connect: ConnectionRefusedError" in caplog.text
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def use_imap(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def test_imap_polls_the_folder_it_is_told_and_only_that_one(
    imap_server: dovecot.Dovecot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """IMAP_FOLDER other than INBOX (with a space: the name must be quoted on the wire); INBOX is left alone."""
    use_imap(monkeypatch, IMAP_FOLDER="Support Queue")
    imap_server.append(mail(subject="In the inbox"))
    imap_server.append(mail(subject="In the support folder"), folder="Support Queue")
    assert poll_imap() == 1
    assert [b"\\Seen" in flags for flags in imap_server.flags("Support Queue")] == [True]
    assert [b"\\Seen" in flags for flags in imap_server.flags("INBOX")] == [False]
    assert poll_imap() == 0
    drain(HANDLERS, on_dead)
    with session_scope() as s:
        assert list(s.scalars(select(Ticket.title))) == ["In the support folder"]
    use_imap(monkeypatch, IMAP_FOLDER="No Such Folder")
    with caplog.at_level(logging.WARNING, logger="ticketing_app.mail.listener"):
        assert poll_imap() == 0
    assert f"IMAP support@{imap_server.host}:{imap_server.port}/No Such Folder: cannot select the folder" in caplog.text


# ----- IMAP over TLS (IMAPS and STARTTLS) against dovecot with a self-signed certificate -----


@pytest.fixture(scope="module")
def imap_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("imap-tls"))


@pytest.fixture()
def tls_imap(clean_db: str, monkeypatch: pytest.MonkeyPatch, imap_cert: tuple[Path, Path]) -> Iterator[dovecot.Dovecot]:
    """dovecot with TLS: IMAPS on `ssl_port`, STARTTLS on `port`; the client's settings without security or port."""
    if not dovecot.available():
        pytest.skip("dovecot is not installed (scripts/test.sh installs dovecot-imapd)")
    with dovecot.Dovecot(tls=imap_cert) as server:
        use_imap(monkeypatch, IMAP_HOST=server.host, IMAP_USER=server.user, IMAP_PASSWORD=server.password)
        yield server
    get_settings.cache_clear()


def tls_port(server: dovecot.Dovecot, security: str) -> int:
    return server.ssl_port if security == "ssl" else server.port


def tls_logins(server: dovecot.Dovecot) -> list[str]:
    """The logins dovecot saw over TLS (the fixture's own helpers log in over plain IMAP: "secured")."""
    return [line for line in server.logins() if ", TLS, " in line]


@pytest.mark.parametrize(
    ("security", "trust"), [("ssl", "IMAP_CA_FILE"), ("starttls", "IMAP_CA_FILE"), ("ssl", "SSL_CERT_FILE")]
)
def test_imap_polling_over_tls_trusting_a_self_signed_certificate(
    tls_imap: dovecot.Dovecot, monkeypatch: pytest.MonkeyPatch, imap_cert: tuple[Path, Path], security: str, trust: str
) -> None:
    """IMAP_SECURITY=ssl (implicit TLS) and starttls, the server's certificate trusted through IMAP_CA_FILE or
    through the process's trust store (SSL_CERT_FILE): dovecot's own log shows the poll logged in over TLS."""
    use_imap(
        monkeypatch, IMAP_SECURITY=security, IMAP_PORT=str(tls_port(tls_imap, security)), **{trust: str(imap_cert[0])}
    )
    tls_imap.append(mail(sender="tls-user@example.com", subject=f"Came over {security}"))
    assert poll_imap() == 1
    assert [b"\\Seen" in flags for flags in tls_imap.flags()] == [True]
    drain(HANDLERS, on_dead)
    with session_scope() as s:
        assert list(s.scalars(select(Ticket.title))) == [f"Came over {security}"]
    [login] = tls_logins(tls_imap)
    assert f"user=<{tls_imap.user}>" in login


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_an_untrusted_imap_certificate_is_refused_and_the_mail_waits_on_the_server(
    tls_imap: dovecot.Dovecot,
    monkeypatch: pytest.MonkeyPatch,
    imap_cert: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
    security: str,
) -> None:
    """No IMAP_CA_FILE: the system's trust store does not know the certificate. One clear log line, no login (the
    password is never sent), nothing fetched; once the CA is trusted the same mail comes in."""
    port = tls_port(tls_imap, security)
    use_imap(monkeypatch, IMAP_SECURITY=security, IMAP_PORT=str(port))
    tls_imap.append(mail(subject="Waits for trust"))
    with caplog.at_level(logging.DEBUG, logger="ticketing_app.mail.listener"):
        assert poll_imap() == 0
    [line] = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert line.startswith(
        f"IMAP support@{tls_imap.host}:{port}/INBOX: cannot connect: the server's TLS certificate was refused "
        "(self-signed certificate); nothing was fetched, the mails stay on the server. Trust its CA with IMAP_CA_FILE"
    )
    assert tls_imap.password not in caplog.text
    assert tls_logins(tls_imap) == [] and stored() == []
    assert [b"\\Seen" in flags for flags in tls_imap.flags()] == [False]
    use_imap(monkeypatch, IMAP_CA_FILE=str(imap_cert[0]))
    assert poll_imap() == 1
    drain(HANDLERS, on_dead)
    with session_scope() as s:
        assert list(s.scalars(select(Ticket.title))) == ["Waits for trust"]


def test_an_imap_certificate_for_another_name_is_refused(
    clean_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A certificate its CA vouches for, but for another host name: refused all the same (no MITM by any cert)."""
    if not dovecot.available():
        pytest.skip("dovecot is not installed (scripts/test.sh installs dovecot-imapd)")
    other = self_signed(tmp_path, "mail.other.example")
    try:
        with dovecot.Dovecot(tls=other) as server:
            use_imap(
                monkeypatch,
                IMAP_HOST=server.host,
                IMAP_PORT=str(server.ssl_port),
                IMAP_USER=server.user,
                IMAP_PASSWORD=server.password,
                IMAP_SECURITY="ssl",
                IMAP_CA_FILE=str(other[0]),
            )
            server.append(mail(subject="Not for a stranger"))
            with caplog.at_level(logging.WARNING, logger="ticketing_app.mail.listener"):
                assert poll_imap() == 0
            assert "cannot connect: the server's TLS certificate was refused (IP address mismatch" in caplog.text
            assert tls_logins(server) == [] and stored() == []
            assert [b"\\Seen" in flags for flags in server.flags()] == [False]
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_starttls_against_a_server_without_it_never_falls_back_to_plain_text(
    imap_server: dovecot.Dovecot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    imap_server.append(mail(subject="Stays put"))
    logins_before = len(imap_server.logins())
    use_imap(monkeypatch, IMAP_SECURITY="starttls")
    with caplog.at_level(logging.WARNING, logger="ticketing_app.mail.listener"):
        assert poll_imap() == 0
    # dovecot without TLS still lists STARTTLS but answers it with an error: imaplib's "abort: TLS not supported"
    assert "/INBOX: cannot connect: abort: TLS not supported by server" in caplog.text
    assert len(imap_server.logins()) == logins_before and stored() == []
