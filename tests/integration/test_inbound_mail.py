"""Mail comes in: stored raw, processed once by a job into a ticket or a comment, hostile mail refused calmly."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.factories import Factory
from tests.fakes.mails import mail, raw_mail
from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import CommentVia, EmailKind, EventKind, InboundSource, InboundStatus, JobKind, JobStatus
from ticketing_app.jobs import queue
from ticketing_app.jobs.handlers import HANDLERS, on_dead
from ticketing_app.jobs.worker import Worker, drain
from ticketing_app.mail import tokens
from ticketing_app.models import (
    Attachment,
    Comment,
    EmailMessage,
    InboundEmail,
    Job,
    Ticket,
    TicketEvent,
    User,
)
from ticketing_app.schemas import TicketUpdate
from ticketing_app.services import inbound
from ticketing_app.services import tickets as tickets_service
from ticketing_app.states.formatting import event_row


@pytest.fixture()
def settings_env(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    get_settings.cache_clear()


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def deliver(raw: bytes, *, rcpt: str = "helpdesk@localhost", envelope_from: str = "customer@example.com") -> int | None:
    with session_scope() as s:
        return inbound.receive(s, raw, source=InboundSource.SMTP, envelope_from=envelope_from, envelope_to=[rcpt])


def process_all() -> None:
    drain(HANDLERS, on_dead)


def inbound_row(inbound_id: int) -> InboundEmail:
    with session_scope() as s:
        row = s.get(InboundEmail, inbound_id)
        assert row is not None
        return row


def count(model: type, *where: object) -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def delivered_and_processed(raw: bytes, **kwargs: str) -> InboundEmail:
    inbound_id = deliver(raw, **kwargs)
    assert inbound_id is not None
    process_all()
    return inbound_row(inbound_id)


# ----- a new mail opens a ticket -----


def test_a_mail_from_an_unknown_sender_opens_a_ticket_for_a_new_account(clean_db: str, factory: Factory) -> None:
    factory.admin()
    row = delivered_and_processed(
        mail(sender="Jane Doe <Jane@Example.com>", subject="VPN drops every hour", body="Since Monday.\n")
    )
    assert row.status == InboundStatus.PROCESSED, row.outcome
    with session_scope() as s:
        ticket = s.get(Ticket, row.ticket_id)
        assert ticket is not None
        assert ticket.title == "VPN drops every hour"
        assert ticket.description == "Since Monday."
        requester = s.get(User, ticket.created_by_id)
        assert requester is not None
        assert (requester.email, requester.name, requester.role, requester.is_active) == (
            "jane@example.com",
            "Jane Doe",
            "user",
            True,
        )
        created = s.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "created"))
        assert created is not None and created.data == {"via": "email"}
        # Triaged and routed like any other ticket (drain ran the pipeline).
        assert ticket.triage_status == "done" and ticket.assigned_at is not None
        # The requester's timeline says how it came.
        detail = tickets_service.get_ticket_detail(s, requester, ticket.id)
        [created_row] = [event_row(e) for e in detail.events if e.kind == EventKind.CREATED]
        assert created_row.detail == "by e-mail"


def test_the_account_made_for_an_unknown_sender_is_claimed_with_a_password_reset(api, factory: Factory) -> None:
    """No password was ever chosen for it: the sender asks for a reset, follows the mailed link, logs in, and finds
    the ticket their mail opened."""
    factory.admin()
    row = delivered_and_processed(mail(sender="Claire <claire@example.com>", subject="Printer on fire", body="Help\n"))
    assert row.status == InboundStatus.PROCESSED, row.outcome
    new_password = "claimed by reset 42"
    assert (
        api.post("/api/auth/login", json={"email": "claire@example.com", "password": new_password}).status_code == 401
    )
    asked = api.post("/api/auth/password-reset", json={"email": "claire@example.com"})
    assert asked.status_code == 202, asked.text
    with session_scope() as s:
        [reset_mail] = s.scalars(
            select(EmailMessage).where(
                EmailMessage.to_address == "claire@example.com", EmailMessage.kind == EmailKind.PASSWORD_RESET
            )
        )
        link = re.search(r"/reset-password\?token=([A-Za-z0-9_-]+)", reset_mail.body_text)
    assert link, reset_mail.body_text
    confirmed = api.post("/api/auth/password-reset/confirm", json={"token": link.group(1), "password": new_password})
    assert confirmed.status_code == 200, confirmed.text
    login = api.post("/api/auth/login", json={"email": "claire@example.com", "password": new_password})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    mine = api.get("/api/tickets", headers=headers)
    assert mine.status_code == 200, mine.text
    assert [(t["id"], t["title"]) for t in mine.json()["items"]] == [(row.ticket_id, "Printer on fire")]
    detail = api.get(f"/api/tickets/{row.ticket_id}", headers=headers).json()
    assert detail["description"] == "Help"


def test_unknown_senders_can_be_refused(settings_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    set_env(settings_env, INBOUND_UNKNOWN_SENDERS="refuse")
    with caplog.at_level(logging.WARNING, logger="ticketing_app.services.inbound"):
        row = delivered_and_processed(mail(sender="stranger@example.com"))
    assert row.status == InboundStatus.REFUSED
    assert "unknown sender" in (row.outcome or "")
    assert count(User) == 0 and count(Ticket) == 0
    assert "refused" in caplog.text and "stranger@example.com" in caplog.text


def test_a_known_sender_gets_the_ticket_and_a_long_subject_is_cut(clean_db: str, factory: Factory) -> None:
    requester = factory.user(email="known@example.com")
    row = delivered_and_processed(mail(sender="known@example.com", subject="x" * 500))
    with session_scope() as s:
        ticket = s.get(Ticket, row.ticket_id)
        assert ticket is not None and ticket.created_by_id == requester.id
        assert len(ticket.title) == 200


# ----- replies -----


def _ticket_for(factory: Factory) -> tuple[User, User, Ticket]:
    """A ticket by a requester, assigned to a moderator."""
    admin = factory.admin()
    moderator = factory.user("moderator", email="mod@example.com")
    requester = factory.user(email="req@example.com")
    ticket = factory.ticket(requester)
    with session_scope() as s:
        tickets_service.update_ticket(
            s, s.get(User, admin.id), ticket.id, TicketUpdate(assignee_id=moderator.id, reason="mine")
        )
    return requester, moderator, ticket


def test_a_reply_to_the_tokened_address_becomes_a_comment_without_the_quoted_history(
    clean_db: str, factory: Factory
) -> None:
    requester, _, ticket = _ticket_for(factory)
    body = (
        "It works again, thanks.\n\n-- \nReq Person\nACME\n\n"
        "On Tue, Dec 1, 2026 at 10:00 AM Helpdesk <helpdesk@localhost> wrote:\n> Please restart it.\n"
    )
    address = tokens.reply_address(ticket.id, requester.id)
    row = delivered_and_processed(mail(sender="req@example.com", to=address, body=body), rcpt=address)
    assert row.status == InboundStatus.PROCESSED, row.outcome
    with session_scope() as s:
        comment = s.get(Comment, row.comment_id)
        assert comment is not None
        assert (comment.ticket_id, comment.author_id, comment.via) == (ticket.id, requester.id, CommentVia.EMAIL)
        assert comment.body == "It works again, thanks."
        event = s.scalar(select(TicketEvent).where(TicketEvent.kind == EventKind.COMMENTED))
        assert event is not None and event.data["via"] == "email"


def test_the_token_header_and_threading_also_find_the_ticket(clean_db: str, factory: Factory) -> None:
    requester, _, ticket = _ticket_for(factory)
    header = delivered_and_processed(
        mail(sender="req@example.com", headers={"X-Helpdesk-Token": tokens.reply_token(ticket.id, requester.id)})
    )
    assert (header.status, header.ticket_id) == (InboundStatus.PROCESSED, ticket.id), header.outcome
    with session_scope() as s:
        sent = s.scalar(select(EmailMessage).where(EmailMessage.ticket_id == ticket.id).limit(1))
        assert sent is not None and sent.message_id
    threaded = delivered_and_processed(
        mail(sender="req@example.com", headers={"In-Reply-To": sent.message_id, "References": sent.message_id})
    )
    assert (threaded.status, threaded.ticket_id) == (InboundStatus.PROCESSED, ticket.id), threaded.outcome
    root = delivered_and_processed(
        mail(sender="req@example.com", headers={"References": f"<ticket-{ticket.id}@localhost>"})
    )
    assert (root.status, root.ticket_id) == (InboundStatus.PROCESSED, ticket.id), root.outcome
    assert count(Comment, Comment.ticket_id == ticket.id) == 3


def test_a_forged_from_of_staff_replying_to_a_ticket_they_do_not_own_is_refused(
    clean_db: str, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    requester, moderator, ticket = _ticket_for(factory)
    other_mod = factory.user("moderator", email="other-mod@example.com")
    address = tokens.reply_address(ticket.id, requester.id)  # the requester's reply address, leaked or guessed
    with caplog.at_level(logging.WARNING, logger="ticketing_app.services.inbound"):
        forged = delivered_and_processed(mail(sender="other-mod@example.com", to=address), rcpt=address)
        # Threading alone (the guessable root id) is never enough for staff.
        threaded = delivered_and_processed(
            mail(sender="other-mod@example.com", headers={"References": f"<ticket-{ticket.id}@localhost>"})
        )
        # A genuine token of their own, for a ticket they cannot see: the service's rules say no.
        own = tokens.reply_address(ticket.id, other_mod.id)
        not_theirs = delivered_and_processed(mail(sender="other-mod@example.com", to=own), rcpt=own)
    assert forged.status == InboundStatus.REFUSED and "does not match the reply token" in (forged.outcome or "")
    assert threaded.status == InboundStatus.REFUSED and "staff reply" in (threaded.outcome or "")
    assert not_theirs.status == InboundStatus.REFUSED and "not found" in (not_theirs.outcome or "").lower()
    assert count(Comment) == 0
    assert "does not match the reply token" in caplog.text
    # The assigned moderator, with their own token, may reply.
    mine = tokens.reply_address(ticket.id, moderator.id)
    ok = delivered_and_processed(mail(sender="mod@example.com", to=mine), rcpt=mine)
    assert ok.status == InboundStatus.PROCESSED, ok.outcome


def test_a_forged_token_is_refused(clean_db: str, factory: Factory) -> None:
    requester, _, ticket = _ticket_for(factory)
    genuine = tokens.reply_token(ticket.id, requester.id)
    forged = ("a" if genuine[0] != "a" else "b") + genuine[1:]
    row = delivered_and_processed(
        mail(sender="req@example.com", to=f"helpdesk+{forged}@localhost"), rcpt=f"helpdesk+{forged}@localhost"
    )
    assert row.status == InboundStatus.REFUSED and "not valid" in (row.outcome or "")


# ----- loops, bounces, duplicates -----


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"Precedence": "auto_reply"},
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "Out of office"},
        {"Return-Path": "<>"},
    ],
)
def test_auto_replies_never_open_tickets_nor_get_answered(clean_db: str, headers: dict[str, str]) -> None:
    row = delivered_and_processed(mail(sender="ooo@example.com", subject="Out of office", headers=headers))
    assert row.status == InboundStatus.IGNORED, row.outcome
    assert count(Ticket) == 0 and count(User) == 0 and count(EmailMessage) == 0


def test_bounces_from_mailer_daemon_and_reports_are_ignored(clean_db: str) -> None:
    daemon = delivered_and_processed(mail(sender="MAILER-DAEMON@mx.example.com", subject="Undelivered"))
    report = delivered_and_processed(
        raw_mail(
            "From: someone@example.com\nTo: helpdesk@localhost\nSubject: Delivery report\nMessage-ID: <r1@x>\n"
            'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"',
            b"--b\nContent-Type: text/plain\n\nFailed.\n--b--\n",
        )
    )
    null_sender = delivered_and_processed(mail(sender="x@example.com"), envelope_from="")
    assert [r.status for r in (daemon, report, null_sender)] == [InboundStatus.IGNORED] * 3
    assert count(Ticket) == 0


def test_an_auto_reply_to_our_own_mail_does_not_start_a_loop(clean_db: str, factory: Factory) -> None:
    requester, _, ticket = _ticket_for(factory)
    process_all()
    mails_before = count(EmailMessage)
    address = tokens.reply_address(ticket.id, requester.id)
    row = delivered_and_processed(
        mail(
            sender="req@example.com", to=address, subject="Automatic reply", headers={"Auto-Submitted": "auto-replied"}
        ),
        rcpt=address,
    )
    assert row.status == InboundStatus.IGNORED
    assert count(Comment) == 0 and count(EmailMessage) == mails_before
    # And our own mail coming back (From the support address) is dropped too.
    own = delivered_and_processed(mail(sender="Helpdesk <helpdesk@localhost>"))
    assert own.status == InboundStatus.IGNORED and "our own" in (own.outcome or "")


def test_the_same_message_delivered_twice_makes_one_comment(clean_db: str, factory: Factory) -> None:
    requester, _, ticket = _ticket_for(factory)
    address = tokens.reply_address(ticket.id, requester.id)
    raw = mail(sender="req@example.com", to=address, message_id="<same@client.example>")
    first = deliver(raw, rcpt=address)
    second = deliver(raw, rcpt=address)
    assert first is not None and second is None
    assert count(Job, Job.kind == JobKind.PROCESS_INBOUND) == 1
    process_all()
    assert deliver(raw, rcpt=address) is None  # also after processing
    process_all()
    assert count(Comment) == 1 and count(InboundEmail) == 1


def test_a_mail_without_message_id_is_deduplicated_by_its_bytes(clean_db: str) -> None:
    raw = raw_mail("From: a@example.com\nTo: helpdesk@localhost\nSubject: no id", b"hello\n")
    assert deliver(raw) is not None
    assert deliver(raw) is None
    assert inbound_row(1).message_id.endswith("@inbound.invalid>")


def test_a_stored_mail_survives_a_crash_before_processing_and_is_processed_once(clean_db: str) -> None:
    """The worker took the job and died (its lease ran out): a restarted worker processes the mail once."""
    inbound_id = deliver(mail(sender="crash@example.com"))
    assert inbound_id is not None
    with session_scope() as s:  # a worker claims the job, then is killed before it commits anything
        [claimed] = queue.claim_jobs(s, "dead-worker", limit=1, lease_seconds=30, kind=JobKind.PROCESS_INBOUND)
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == claimed.id).values(locked_until=func.now() - timedelta(seconds=1)))
    assert inbound_row(inbound_id).status == InboundStatus.RECEIVED
    with session_scope() as s:
        assert [job.id for job in queue.reclaim_expired(s)] == [claimed.id]
    worker = Worker(HANDLERS, on_dead=on_dead, concurrency=1)
    assert worker.run_job(_claim(worker.worker_id, JobKind.PROCESS_INBOUND)) == "done"
    # The same job delivered again (e.g. a lease lost after the commit) changes nothing.
    with session_scope() as s:
        inbound.process(s, inbound_id)
    row = inbound_row(inbound_id)
    assert row.status == InboundStatus.PROCESSED and count(Ticket) == 1
    with session_scope() as s:
        assert s.get(Job, claimed.id).status == JobStatus.DONE  # type: ignore[union-attr]


def _claim(worker_id: str, kind: str) -> queue.ClaimedJob:
    with session_scope() as s:
        [job] = queue.claim_jobs(s, worker_id, limit=1, lease_seconds=30, kind=kind)
    return job


# ----- hostile content -----


def test_an_html_only_mail_with_scripts_becomes_safe_text(clean_db: str, caplog: pytest.LogCaptureFixture) -> None:
    html = (
        "<html><head><style>body{color:red}</style><script>steal(document.cookie)</script></head>"
        "<body><p>Hello <b>team</b>,</p><p>the <a href='java\tscript:alert(1)'>portal</a> is down.</p>"
        "<img src=x onerror=alert(1)><script>alert('again')</script><iframe src=//evil.example/></iframe></body></html>"
    )
    with caplog.at_level(logging.WARNING, logger="ticketing_app.services.inbound"):
        row = delivered_and_processed(mail(sender="html@example.com", body="", html=html, message_id="<html@x>"))
    assert row.status == InboundStatus.PROCESSED, row.outcome
    [line] = [r.getMessage() for r in caplog.records if "active content" in r.getMessage()]
    assert line == (
        f"inbound mail {row.id} <html@x> from html@example.com: HTML body with active content (2 script elements, "
        "1 javascript: link, 1 event-handler attribute, 1 iframe/object/embed element): dropped, only its text is kept"
    )
    assert "steal" not in caplog.text and "document.cookie" not in caplog.text  # the log names, never quotes
    with session_scope() as s:
        ticket = s.get(Ticket, row.ticket_id)
        assert ticket is not None
        assert ticket.description == "Hello team,\n\nthe portal is down."
        for bad in ("<", "script", "steal", "alert", "color:red"):
            assert bad not in ticket.description


def test_header_injection_in_the_subject_stays_one_line(clean_db: str, caplog: pytest.LogCaptureFixture) -> None:
    raw = raw_mail(
        "From: inject@example.com\nTo: helpdesk@localhost\nMessage-ID: <inj@x>\n"
        "Subject: =?utf-8?q?Help=0D=0ABcc:_victim@example.com=0D=0A=0D=0Abody?=",
        b"text\n",
    )
    with caplog.at_level(logging.WARNING, logger="ticketing_app.services.inbound"):
        row = delivered_and_processed(raw)
    assert row.status == InboundStatus.PROCESSED, row.outcome
    assert [r.getMessage() for r in caplog.records if "header injection" in r.getMessage()] == [
        f"inbound mail {row.id} <inj@x> from inject@example.com: possible header injection: line breaks in the "
        "Subject, joined onto one line"
    ]
    assert all("\n" not in r.getMessage() and "\r" not in r.getMessage() for r in caplog.records)
    with session_scope() as s:
        ticket = s.get(Ticket, row.ticket_id)
        assert ticket is not None
        assert "\n" not in ticket.title and "\r" not in ticket.title
        assert ticket.title == "Help Bcc: victim@example.com body"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (  # the closing boundary never comes, and a part's boundary is wrong
            'Content-Type: multipart/mixed; boundary="abc"',
            b"--abc\nContent-Type: text/plain\n\nfirst part\n--abd\nbroken\n",
        ),
        (  # base64 that is not base64
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64",
            b"!!!not*base64@@@\n",
        ),
        (  # a charset that does not exist
            "Content-Type: text/plain; charset=x-no-such-charset",
            b"caf\xe9 au lait\n",
        ),
        (  # multipart without any boundary parameter
            "Content-Type: multipart/alternative",
            b"just text\n",
        ),
    ],
)
def test_malformed_mime_is_read_as_far_as_possible_without_a_crash(clean_db: str, headers: str, body: bytes) -> None:
    raw = raw_mail(f"From: broken@example.com\nTo: helpdesk@localhost\nSubject: Broken mail\n{headers}", body)
    row = delivered_and_processed(raw)
    assert row.status in (InboundStatus.PROCESSED, InboundStatus.FAILED), row.outcome
    assert row.status == InboundStatus.PROCESSED, row.outcome
    assert count(Job, Job.status == JobStatus.DEAD) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (  # thousands of parts: the parser would take minutes of a worker slot
            b'Content-Type: multipart/mixed; boundary="x"\n\n'
            + b"".join(b"--x\nContent-Type: text/plain\n\npart\n" for _ in range(300))
            + b"--x--\n",
            "301 MIME parts (at most 200 are read)",
        ),
        (  # nested deeper than Python recurses, within the part limit
            b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (n, n) for n in range(150))
            + b"Content-Type: text/plain\n\nhello\n",
            None,
        ),
    ],
)
def test_a_mail_built_to_exhaust_the_parser_fails_with_a_log_line_not_a_crash(
    clean_db: str, body: bytes, reason: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    raw = raw_mail("From: bomb@example.com\nTo: helpdesk@localhost\nSubject: bomb\nMIME-Version: 1.0", body)
    with caplog.at_level(logging.WARNING, logger="ticketing_app.services.inbound"):
        row = delivered_and_processed(raw)
    # Read if the parser copes (the deep one may be), else failed with the reason; never a crash or a dead job.
    assert row.status in (InboundStatus.FAILED, InboundStatus.PROCESSED), row.outcome
    if reason:
        assert row.status == InboundStatus.FAILED and reason in (row.outcome or "")
    if row.status == InboundStatus.FAILED:
        assert f"inbound mail {row.id}" in caplog.text and "unreadable mail" in caplog.text
    assert count(Job, Job.status == JobStatus.DEAD) == 0


def test_attachments_are_stored_and_oversized_ones_skipped_with_a_note(
    settings_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    set_env(settings_env, MAX_ATTACHMENT_MB="0.01", INBOUND_MAX_MB="1")  # about 10 KB per file
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    big = b"x" * 20_000
    row = delivered_and_processed(
        mail(sender="files@example.com", attachments=[("../../shot.png", png), ("huge.log", big)])
    )
    assert row.status == InboundStatus.PROCESSED, row.outcome
    with session_scope() as s:
        files = s.scalars(select(Attachment).where(Attachment.ticket_id == row.ticket_id)).all()
        assert [(f.filename, f.content_type, f.size) for f in files] == [("shot.png", "image/png", len(png))]
        ticket = s.get(Ticket, row.ticket_id)
        assert ticket is not None and "[Attachment huge.log (0.0 MB) was not stored" in ticket.description


def test_an_oversized_mail_is_not_stored(settings_env: pytest.MonkeyPatch) -> None:
    from ticketing_app.errors import TooLarge

    set_env(settings_env, INBOUND_MAX_MB="0.01")
    with pytest.raises(TooLarge):
        deliver(mail(body="x" * 20_000))
    assert count(InboundEmail) == 0 and count(Job) == 0


def test_retention_deletes_dealt_with_mails_after_their_age_and_keeps_failed_ones(clean_db: str) -> None:
    from ticketing_app.config import Settings
    from ticketing_app.jobs import retention

    for n in range(4):
        deliver(mail(message_id=f"<old-{n}@x>"))
    with session_scope() as s:
        for n, status in enumerate(("processed", "ignored", "failed", "received")):
            s.execute(
                update(InboundEmail)
                .where(InboundEmail.message_id == f"<old-{n}@x>")
                .values(status=status, processed_at=func.now() - timedelta(days=31))
            )
    deliver(mail(message_id="<recent@x>"))
    process_all()  # processed now: too young to go
    deleted = retention.purge(Settings(retention_inbound_emails_days=30))
    assert deleted["inbound_emails"] == 2
    with session_scope() as s:
        left = sorted(s.scalars(select(InboundEmail.message_id)))
    assert left == ["<old-2@x>", "<old-3@x>", "<recent@x>"]


def test_a_job_that_keeps_failing_marks_the_mail_failed_and_a_retry_processes_it_once(
    settings_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    set_env(settings_env, JOB_MAX_ATTEMPTS="1")
    inbound_id = deliver(mail(sender="unlucky@example.com"))
    assert inbound_id is not None

    def database_away(*args: object) -> None:
        raise RuntimeError("database away")

    original = inbound._decide
    settings_env.setattr(inbound, "_decide", database_away)
    with caplog.at_level(logging.WARNING):
        process_all()
    row = inbound_row(inbound_id)
    assert row.status == InboundStatus.FAILED and "database away" in (row.outcome or "")
    assert count(Ticket) == 0
    settings_env.setattr(inbound, "_decide", original)
    with session_scope() as s:
        job_id = s.scalar(select(Job.id).where(Job.kind == JobKind.PROCESS_INBOUND, Job.status == JobStatus.DEAD))
        assert job_id is not None and queue.retry_dead(s, job_id)
    process_all()
    assert inbound_row(inbound_id).status == InboundStatus.PROCESSED and count(Ticket) == 1


def test_a_reply_with_a_file_attaches_it_to_the_comment(clean_db: str, factory: Factory) -> None:
    requester, _, ticket = _ticket_for(factory)
    address = tokens.reply_address(ticket.id, requester.id)
    pdf = b"%PDF-1.4\n" + b"0" * 200
    row = delivered_and_processed(
        mail(sender="req@example.com", to=address, attachments=[("invoice.exe", pdf)]), rcpt=address
    )
    assert row.status == InboundStatus.PROCESSED, row.outcome
    with session_scope() as s:
        [file] = s.scalars(select(Attachment)).all()
        assert (file.ticket_id, file.comment_id, file.uploaded_by_id) == (ticket.id, row.comment_id, requester.id)
        assert (file.filename, file.content_type) == ("invoice.exe", "application/pdf")  # typed by its bytes
