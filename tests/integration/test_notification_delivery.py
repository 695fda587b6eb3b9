"""Notification mails as a real SMTP server receives them (headers, escaping), and the admins' digest."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.factories import Factory
from tests.fakes.smtp_server import FakeSmtpServer
from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import JobKind, JobStatus
from ticketing_app.jobs import digest
from ticketing_app.jobs.handlers import HANDLERS, on_dead
from ticketing_app.jobs.worker import drain
from ticketing_app.mail import tokens, transport
from ticketing_app.models import EmailMessage, Job, Ticket, User
from ticketing_app.schemas import CommentCreate, TicketUpdate
from ticketing_app.services import notifications
from ticketing_app.services import tickets as tickets_service
from ticketing_app.worker_main import build_worker

SetEnv = Callable[..., None]


@pytest.fixture()
def set_env(clean_db: str) -> Iterator[SetEnv]:
    saved: dict[str, str | None] = {}

    def apply(**values: object) -> None:
        for name, value in values.items():
            saved.setdefault(name, os.environ.get(name))
            os.environ[name] = str(value)
        get_settings.cache_clear()
        transport.default_sender.cache_clear()

    yield apply
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()
    transport.default_sender.cache_clear()


@pytest.fixture()
def smtp(set_env: SetEnv) -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        set_env(
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=server.port,
            SMTP_SECURITY="none",
            SMTP_TIMEOUT_SECONDS=3,
            MAIL_FROM="Helpdesk <helpdesk@example.com>",
            SUPPORT_ADDRESS="support@example.com",
            APP_BASE_URL="https://help.example.com",
        )
        yield server


def _as(user: User, fn):
    with session_scope() as s:
        return fn(s, s.get(User, user.id))


def test_a_reply_arrives_escaped_threaded_with_its_reply_address_and_one_click_unsubscribe(
    factory: Factory, smtp: FakeSmtpServer
) -> None:
    admin = factory.admin()
    mod = factory.user("moderator")
    requester = factory.user(email="req@example.com")
    ticket = factory.ticket(requester, "Refund", "Please refund")
    with session_scope() as s:  # a title with a line break (e.g. from an old import): must not become a header
        s.execute(update(Ticket).where(Ticket.id == ticket.id).values(title="Refund\r\nBcc: evil@example.com"))
    _as(admin, lambda s, u: tickets_service.update_ticket(s, u, ticket.id, TicketUpdate(assignee_id=mod.id)))
    hostile = '<script>alert("x")</script> & <img src=x onerror=1>\r\nBcc: evil@example.com\nthird line'
    _as(mod, lambda s, u: tickets_service.add_comment(s, u, ticket.id, CommentCreate(body=hostile)))
    drain(HANDLERS, on_dead)

    received = smtp.wait_for(4)  # two welcome mails, the assignment, the reply
    assert len(received) == 4 and all(m.rcpt_tos != ("evil@example.com",) for m in received)
    reply = next(m for m in received if m.rcpt_tos == ("req@example.com",) and "New reply" in m.message["Subject"])
    message = reply.message
    assert message["Bcc"] is None and "\n" not in message["Subject"] and "Bcc: evil" in message["Subject"]
    assert message["Subject"].startswith(f"[{ticket.reference}] New reply: Refund")
    # the reply address and token name this ticket and this recipient
    assert tokens.parse_reply_address(message["Reply-To"]) == tokens.ReplyTarget(ticket.id, requester.id)
    assert message["Reply-To"].startswith("support+") and message["Reply-To"].endswith("@example.com")
    assert tokens.read_reply_token(message["X-Helpdesk-Token"]) == tokens.ReplyTarget(ticket.id, requester.id)
    root = f"<ticket-{ticket.id}@example.com>"
    assert message["In-Reply-To"] == root and message["References"] == root
    # RFC 8058 one-click unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://help.example.com/api/unsubscribe?token=") and unsubscribe.endswith(">")
    assert tokens.read_unsubscribe_token(unsubscribe[1:-1].split("token=")[1]) == (requester.id, "ticket_reply")
    # the reply's text, escaped in HTML, with its lines kept
    assert "<script" not in reply.html and "<img" not in reply.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=1&gt;" in reply.html
    assert '<script>alert("x")</script> & <img src=x onerror=1>\nBcc: evil@example.com\nthird line' in reply.text
    assert f"https://help.example.com/tickets/{ticket.id}" in reply.text
    assert unsubscribe[1:-1] in reply.text and unsubscribe[1:-1].replace("&", "&amp;") in reply.html
    # the assignment mail is threaded the same way, with the moderator's own reply address
    assigned = next(m for m in smtp.messages if m.rcpt_tos == (mod.email,) and "assigned" in m.message["Subject"])
    assert assigned.message["References"] == root
    assert tokens.parse_reply_address(assigned.message["Reply-To"]) == tokens.ReplyTarget(ticket.id, mod.id)
    # account mails carry no unsubscribe
    welcome = next(m for m in smtp.messages if m.rcpt_tos == ("req@example.com",) and "Welcome" in m.message["Subject"])
    assert welcome.message["List-Unsubscribe"] is None


def test_a_stored_header_with_a_line_break_is_refused_not_sent(factory: Factory, smtp: FakeSmtpServer) -> None:
    requester = factory.user()
    drain(HANDLERS, on_dead)
    smtp.clear()
    with session_scope() as s:
        row = notifications.welcome(s, s.get(User, requester.id))
        row.headers = {"X-Helpdesk-Token": "abc\r\nBcc: evil@example.com"}
    drain(HANDLERS, on_dead)
    with session_scope() as s:
        stored = s.get(EmailMessage, row.id)
        assert stored.status == "failed" and "single line" in stored.last_error
    assert smtp.messages == []


# ----- the admins' digest -----

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
PERIOD_START = datetime(2026, 12, 2, tzinfo=UTC)


def digests() -> list[EmailMessage]:
    with session_scope() as s:
        rows = s.scalars(select(EmailMessage).where(EmailMessage.kind == "admin_digest").order_by(EmailMessage.id))
        result = list(rows)
        s.expunge_all()
        return result


def test_periods_are_aligned_to_the_epoch() -> None:
    assert digest.period_start(NOW, 24) == PERIOD_START
    assert digest.period_start(NOW, 6) == datetime(2026, 12, 2, 6, tzinfo=UTC)
    assert digest.check_interval(24) == 300 and digest.check_interval(1) == 300


def test_the_digest_goes_out_once_per_period_across_two_workers(factory: Factory) -> None:
    admin = factory.admin()
    other_admin = factory.user("admin")
    requester = factory.user()
    left = factory.ticket(requester, "Nobody <b>took</b> this", "waiting")
    with session_scope() as s:  # created yesterday; a job died yesterday, another one today
        s.execute(update(Ticket).where(Ticket.id == left.id).values(created_at=PERIOD_START - timedelta(hours=5)))
        s.add_all(
            [
                Job(
                    kind="triage",
                    payload={},
                    status=JobStatus.DEAD,
                    last_error="Boom: <oops>",
                    finished_at=PERIOD_START - timedelta(hours=2),
                ),
                Job(
                    kind="assign",
                    payload={},
                    status=JobStatus.DEAD,
                    last_error="later",
                    finished_at=PERIOD_START + timedelta(hours=1),
                ),
            ]
        )
        s.execute(update(Job).where(Job.kind == JobKind.TRIAGE, Job.status == JobStatus.QUEUED).values(status="done"))
    workers = [build_worker(), build_worker()]
    tasks = [worker.periodic["admin_digest"][1] for worker in workers]
    results: list[object] = []
    barrier = threading.Barrier(len(tasks) * 2)

    def run(task) -> None:
        barrier.wait()
        results.append(task(NOW))

    threads = [threading.Thread(target=run, args=(task,)) for task in tasks * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]  # one of four calls queued it
    drain(HANDLERS, on_dead)
    assert digest.schedule(NOW + timedelta(hours=3)) is False  # later in the same period: nothing new
    drain(HANDLERS, on_dead)

    rows = digests()
    assert sorted(r.to_address for r in rows) == sorted([admin.email, other_admin.email])
    row = rows[0]
    assert "1 unassigned ticket(s), 1 dead job(s)" in row.subject
    assert left.reference in row.body_text and "Nobody <b>took</b> this" in row.body_text
    assert "&lt;b&gt;took&lt;/b&gt;" in row.body_html and "<b>took" not in row.body_html
    assert "Boom: <oops>" in row.body_text and "Boom: &lt;oops&gt;" in row.body_html
    assert "later" not in row.body_text  # died in the current period: next digest
    assert row.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert tokens.read_unsubscribe_token(row.headers["List-Unsubscribe"][1:-1].split("token=")[1])[1] == "admin_digest"
    assert "Reply-To" not in row.headers  # not about one ticket

    # the next period reports the job that died in this one
    assert digest.schedule(NOW + timedelta(days=1)) is True
    drain(HANDLERS, on_dead)
    latest = digests()[-1]
    assert "later" in latest.body_text and "Boom" not in latest.body_text


def test_no_digest_when_there_is_nothing_to_report_or_when_it_is_muted_or_off(
    factory: Factory, set_env: SetEnv
) -> None:
    admin = factory.admin()
    assert digest.schedule(NOW) is True
    drain(HANDLERS, on_dead)
    assert digests() == []
    with session_scope() as s:
        done = s.scalar(select(Job).where(Job.kind == JobKind.ADMIN_DIGEST))
        assert done.status == JobStatus.DONE
    # something to report, but the admin turned the digest off
    factory.ticket(factory.user(), "waiting", "x")
    with session_scope() as s:
        s.execute(update(Ticket).values(created_at=PERIOD_START))
        notifications.set_preferences(s, s.get(User, admin.id), {"admin_digest": False})
    assert digest.schedule(NOW + timedelta(days=1)) is True
    drain(HANDLERS, on_dead)
    assert digests() == []
    set_env(ADMIN_DIGEST_HOURS=0)
    assert "admin_digest" not in build_worker().periodic
    assert digest.schedule(NOW + timedelta(days=2)) is False


def test_the_digest_period_may_not_outlive_the_done_jobs_retention(set_env: SetEnv) -> None:
    from ticketing_app.config import Settings

    with pytest.raises(ValueError, match="ADMIN_DIGEST_HOURS"):
        Settings(admin_digest_hours=72, retention_done_jobs_days=2)
    assert Settings(admin_digest_hours=72, retention_done_jobs_days=0).admin_digest_hours == 72
