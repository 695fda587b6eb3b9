"""Recovery: every worker killed with SIGKILL in the middle of a burst, one restarted; the backlog that was in
flight is triaged, assigned and mailed, exactly once, within 30 s of the restart (default lease settings)."""

from __future__ import annotations

import dataclasses
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fakes.fake_gemini import FakeGeminiServer, keyword_triage_responder
from tests.reliability.procs import spawn_worker, stop
from tests.reliability.test_faults import events_per_ticket, wait_until
from ticketing_app.db import session_scope
from ticketing_app.domain import DELIVERED_EMAIL_STATUSES, EmailKind, JobStatus, TriageStatus
from ticketing_app.models import EmailMessage, Job, Ticket

pytestmark = pytest.mark.slow

TICKETS = 100
RECOVERY_LIMIT_S = 30


def finished(ids: list[int]) -> bool:
    with session_scope() as s:
        open_tickets = s.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.id.in_(ids), (Ticket.triage_status != TriageStatus.DONE) | Ticket.assigned_at.is_(None))
        )
        delivered = s.scalar(
            select(func.count())
            .select_from(EmailMessage)
            .where(EmailMessage.ticket_id.in_(ids), EmailMessage.status.in_(DELIVERED_EMAIL_STATUSES))
        )
        live = s.scalar(
            select(func.count()).select_from(Job).where(Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
        )
    return open_tickets == 0 and delivered >= 2 * len(ids) and live == 0


def test_all_workers_killed_mid_burst_then_one_restart_finishes_everything_once_within_30s(
    factory, database, tmp_path: Path
):
    factory.admin()
    for skills in (["billing"], ["sso", "2fa"], ["performance"]):
        factory.user("moderator", skills=skills)
    requester = factory.user()
    responder = keyword_triage_responder()
    slow = lambda request: dataclasses.replace(responder(request), delay=1.0)  # noqa: E731 - a model's latency
    with FakeGeminiServer(default=slow) as fake:
        env = {"GEMINI_API_KEY": "k", "GEMINI_BASE_URL": fake.base_url}  # lease and everything else: defaults
        workers = [spawn_worker(database, tmp_path / f"w{i}.log", env) for i in range(2)]
        try:
            ids = [
                factory.ticket(requester, f"Charged twice, invoice {n}", "Billing charged my card twice.").id
                for n in range(TICKETS)
            ]

            def some_assigned() -> bool:
                with session_scope() as s:
                    assigned = select(func.count()).select_from(Ticket).where(Ticket.assigned_at.is_not(None))
                    return bool(s.scalar(assigned))

            assert wait_until(some_assigned, 60, interval=0.05), (tmp_path / "w0.log").read_text()[-3000:]
            for worker in workers:
                stop(worker, signal.SIGKILL)  # mid-burst: triage, routing and mails in flight
        finally:
            for worker in workers:
                stop(worker, signal.SIGKILL)
        with session_scope() as s:
            in_flight = s.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.RUNNING))
            unfinished = s.scalar(select(func.count()).select_from(Ticket).where(Ticket.assigned_at.is_(None)))
        assert in_flight > 0 and unfinished > 0, (in_flight, unfinished)

        restarted_at = time.monotonic()
        survivor = spawn_worker(database, tmp_path / "restart.log", env)
        try:
            assert wait_until(lambda: finished(ids), RECOVERY_LIMIT_S, interval=0.1), (
                tmp_path / "restart.log"
            ).read_text()[-3000:]
            recovery_s = time.monotonic() - restarted_at
            time.sleep(1.0)  # anything duplicated would show up now
        finally:
            stop(survivor)
    print(f"\n{in_flight} jobs running, {unfinished} tickets unrouted at the kill; done in {recovery_s:.1f} s")
    with session_scope() as s:
        assert events_per_ticket(s, "triaged") == dict.fromkeys(ids, 1)
        assert events_per_ticket(s, "assigned") == dict.fromkeys(ids, 1)
        per_ticket_kind = Counter(
            s.execute(select(EmailMessage.ticket_id, EmailMessage.kind).where(EmailMessage.ticket_id.in_(ids))).all()
        )
        expected = {(i, k): 1 for i in ids for k in (EmailKind.TICKET_ASSIGNED, EmailKind.TICKET_RECEIVED)}
        assert per_ticket_kind == expected
        statuses = set(s.scalars(select(EmailMessage.status).where(EmailMessage.ticket_id.in_(ids))))
        assert statuses <= set(DELIVERED_EMAIL_STATUSES)
        assert set(s.scalars(select(Job.status))) == {JobStatus.DONE}
