"""Retention: old finished jobs, delivered mails, ended throttle counters and expired revoked tokens go;
dead jobs and failed mails stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ticketing_app.config import Settings
from ticketing_app.db import session_scope
from ticketing_app.jobs import retention
from ticketing_app.models import EmailMessage, Job, RevokedToken, ThrottleCounter
from ticketing_app.services import sla
from ticketing_app.worker_main import build_worker


def ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def mail(status: str, sent_days_ago: float | None, n: int) -> EmailMessage:
    return EmailMessage(
        kind="welcome",
        to_address=f"u{n}@example.com",
        subject="s",
        body_text="t",
        body_html="h",
        status=status,
        sent_at=ago(sent_days_ago) if sent_days_ago is not None else None,
    )


def test_purge_deletes_only_what_is_past_its_age_in_small_batches(clean_db: str) -> None:
    with session_scope() as s:
        s.add_all(
            [Job(kind="k", dedupe_key=f"old-done-{n}", status="done", finished_at=ago(8)) for n in range(5)]
            + [
                Job(kind="k", dedupe_key="new-done", status="done", finished_at=ago(6)),
                Job(kind="k", dedupe_key="old-dead", status="dead", finished_at=ago(30)),
                Job(kind="k", dedupe_key="queued", status="queued"),
                Job(kind="k", dedupe_key="running", status="running", locked_by="w", locked_until=ago(-1)),
            ]
        )
        s.add_all(
            [mail("sent", 91, n) for n in range(3)]
            + [mail("recorded", 91, 10), mail("sent", 89, 11), mail("failed", None, 12), mail("pending", None, 13)]
        )
        s.add_all(
            [ThrottleCounter(bucket="login", key=f"old-{n}", window_start=ago(2), hits=3) for n in range(4)]
            + [
                ThrottleCounter(bucket="login", key="recent", window_start=ago(0.5), hits=3),
                ThrottleCounter(bucket="login", key="old-but-blocked", window_start=ago(2), blocked_until=ago(-0.5)),
            ]
        )
        s.add_all(
            [RevokedToken(jti=f"expired-{n}", expires_at=ago(0.1)) for n in range(3)]
            + [RevokedToken(jti="live", expires_at=ago(-0.1))]
        )
    settings = Settings(retention_done_jobs_days=7, retention_sent_emails_days=90, retention_throttle_counters_days=1)

    assert retention.purge(settings, batch=2) == {
        "jobs": 5,
        "emails": 4,
        "throttle_counters": 4,
        "revoked_tokens": 3,
        "ticket_viewers": 0,
        "inbound_emails": 0,
    }
    with session_scope() as s:
        assert sorted(s.scalars(select(Job.dedupe_key))) == ["new-done", "old-dead", "queued", "running"]
        assert sorted(s.scalars(select(EmailMessage.to_address))) == [
            "u11@example.com",
            "u12@example.com",
            "u13@example.com",
        ]
        assert sorted(s.scalars(select(ThrottleCounter.key))) == ["old-but-blocked", "recent"]
        assert list(s.scalars(select(RevokedToken.jti))) == ["live"]
    assert retention.purge(settings, batch=2) == {
        "jobs": 0,
        "emails": 0,
        "throttle_counters": 0,
        "revoked_tokens": 0,
        "ticket_viewers": 0,
        "inbound_emails": 0,
    }


def test_zero_days_keeps_forever(clean_db: str) -> None:
    with session_scope() as s:
        s.add(Job(kind="k", dedupe_key="ancient", status="done", finished_at=ago(3650)))
        s.add(mail("sent", 3650, 1))
        s.add(ThrottleCounter(bucket="login", key="ancient", window_start=ago(3650)))
    settings = Settings(retention_done_jobs_days=0, retention_sent_emails_days=0, retention_throttle_counters_days=0)
    assert retention.purge(settings) == {
        "jobs": 0,
        "emails": 0,
        "throttle_counters": 0,
        "revoked_tokens": 0,
        "ticket_viewers": 0,
        "inbound_emails": 0,
    }


def test_the_worker_runs_retention_reconcile_and_the_sla_check_periodically(clean_db: str) -> None:
    worker = build_worker()
    assert set(worker.periodic) == {"reconcile", "retention", "admin_digest", "sla"}
    assert worker.periodic["admin_digest"][0] == 300
    assert worker.periodic["retention"] == (3600, retention.purge)
    assert worker.periodic["reconcile"][0] == 30
    assert worker.periodic["sla"] == (60, sla.check_deadlines)


def test_presence_of_pages_closed_long_ago_goes(factory) -> None:
    from ticketing_app.models import TicketViewer

    admin, mod = factory.admin(), factory.user("moderator")
    ticket = factory.ticket(factory.user())
    with session_scope() as s:
        s.add_all(
            [
                TicketViewer(ticket_id=ticket.id, user_id=admin.id, seen_at=ago(2 / 24)),  # two hours ago
                TicketViewer(ticket_id=ticket.id, user_id=mod.id, seen_at=ago(0)),
            ]
        )
    assert retention.purge(Settings())["ticket_viewers"] == 1
    with session_scope() as s:
        assert list(s.scalars(select(TicketViewer.user_id))) == [mod.id]
