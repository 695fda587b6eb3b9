"""Faults: a worker killed mid-job, the database restarted under load, several worker processes."""

from __future__ import annotations

import dataclasses
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from tests.factories import PASSWORD
from tests.fakes.fake_gemini import FakeGeminiServer, keyword_triage_responder
from tests.reliability.procs import RestartablePostgres, spawn_api, spawn_worker, stop
from ticketing_app.db import session_scope
from ticketing_app.models import EmailMessage, Job, Ticket, TicketEvent

pytestmark = pytest.mark.slow


def wait_until(condition, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def events_per_ticket(session: Session, kind: str) -> Counter[int]:
    rows = session.execute(select(TicketEvent.ticket_id).where(TicketEvent.kind == kind)).scalars().all()
    return Counter(rows)


def test_worker_killed_mid_triage_is_taken_over_and_completes_once(factory, database, tmp_path: Path):
    factory.admin()
    moderator = factory.user("moderator", skills=["billing"])
    responder = keyword_triage_responder()
    hanging = lambda request: dataclasses.replace(responder(request), delay=60)  # noqa: E731
    with FakeGeminiServer(default=hanging) as fake:
        worker_a = spawn_worker(
            database,
            tmp_path / "a.log",
            {
                "GEMINI_API_KEY": "k",
                "GEMINI_BASE_URL": fake.base_url,
                "GEMINI_TIMEOUT_SECONDS": "90",
                "JOB_LEASE_SECONDS": "5",
            },
        )
        try:
            ticket = factory.ticket(factory.user(), "Charged twice on my billing", "Two billing charges.")
            assert wait_until(lambda: fake.request_count >= 1, 20), "worker A never started the triage"
            stop(worker_a, signal.SIGKILL)  # dies holding the job's lease, mid-AI-call
        finally:
            stop(worker_a, signal.SIGKILL)
    with session_scope() as s:
        job = s.scalar(select(Job).where(Job.kind == "triage"))
        assert (job.status, job.attempts) == ("running", 1)

    worker_b = spawn_worker(database, tmp_path / "b.log", {"JOB_LEASE_SECONDS": "5"})  # offline provider
    try:

        def routed() -> bool:
            with session_scope() as s:
                return (
                    s.scalar(
                        select(func.count()).select_from(EmailMessage).where(EmailMessage.kind == "ticket_assigned")
                    )
                    == 1
                )

        assert wait_until(routed, 40), (tmp_path / "b.log").read_text()[-3000:]
        time.sleep(1.5)  # anything duplicated would show up now
    finally:
        stop(worker_b)
    with session_scope() as s:
        t = s.get(Ticket, ticket.id)
        assert t.assigned_to_id == moderator.id and t.triage_provider == "offline"
        assert events_per_ticket(s, "triaged") == {ticket.id: 1}
        assert events_per_ticket(s, "assigned") == {ticket.id: 1}
        assert (
            s.scalar(select(func.count()).select_from(EmailMessage).where(EmailMessage.kind == "ticket_assigned")) == 1
        )
        job = s.scalar(select(Job).where(Job.kind == "triage"))
        assert (job.status, job.attempts) == ("done", 2)
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "assign")) == 1


@pytest.fixture()
def private_pg():
    # Not under pytest's tmp_path: PostgreSQL runs as another system user that must traverse the parent
    # folders, and pytest resets its tmp root to 0700 whenever another pytest session starts.
    home = Path(tempfile.mkdtemp(prefix="helpdesk-restart-"))
    pg = RestartablePostgres(home / "pg")
    admin = create_engine(pg.url().replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE helpdesk"))
    admin.dispose()
    url = pg.url("helpdesk")
    from ticketing_app.migrations import upgrade_database

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), pool_pre_ping=True)
    upgrade_database(engine=engine)
    yield pg, url, engine
    engine.dispose()
    pg.close()
    shutil.rmtree(home, ignore_errors=True)


def test_database_restart_while_serving_and_working(private_pg, tmp_path: Path):
    pg, url, engine = private_pg
    api, base = spawn_api(url, tmp_path / "api.log")
    worker = spawn_worker(url, tmp_path / "worker.log")
    try:
        token = httpx.post(
            f"{base}/api/auth/signup", json={"name": "Load", "email": "load@example.com", "password": PASSWORD}
        ).json()["access_token"]
        results: list[tuple[float, int, float]] = []  # (started, status, seconds)
        stop_client = threading.Event()

        def client() -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
                n = 0
                while not stop_client.is_set():
                    n += 1
                    started = time.monotonic()
                    try:
                        status = c.post("/api/tickets", json={"title": f"Ticket {n}", "description": "x"}).status_code
                    except httpx.HTTPError:
                        status = -1
                    results.append((started, status, time.monotonic() - started))
                    time.sleep(0.05)

        thread = threading.Thread(target=client)
        thread.start()
        time.sleep(1.5)
        down_at = time.monotonic()
        pg.stop()
        time.sleep(3)
        restart_at = time.monotonic()
        pg.start()
        up_at = time.monotonic()
        time.sleep(5)
        stop_client.set()
        thread.join(timeout=60)

        statuses = Counter(status for _, status, _ in results)
        during = [r for r in results if down_at + 0.5 < r[0] and r[0] + r[2] < restart_at]
        after = [r for r in results if r[0] > up_at + 2]
        assert during and all(status == 503 for _, status, _ in during), Counter(s for _, s, _ in during)
        assert max(seconds for _, _, seconds in results) < 10, "a request hung while the database was down"
        assert after and all(status == 201 for _, status, _ in after), Counter(s for _, s, _ in after)
        assert -1 not in statuses and 500 not in statuses, statuses
        created = statuses[201]

        def all_assigned() -> bool:
            with Session(engine) as s:
                return s.scalar(select(func.count()).select_from(Ticket).where(Ticket.assigned_at.is_(None))) == 0

        def all_jobs_done() -> bool:
            with Session(engine) as s:
                return s.scalar(select(func.count()).select_from(Job).where(Job.status != "done")) == 0

        assert wait_until(all_assigned, 60), (tmp_path / "worker.log").read_text()[-3000:]
        # The last mails are sent after the last assignment: wait for them too (nothing dead, nothing stuck).
        assert wait_until(all_jobs_done, 30), (tmp_path / "worker.log").read_text()[-3000:]
        with Session(engine) as s:
            tickets = s.scalar(select(func.count()).select_from(Ticket))
            assert tickets >= created  # every ticket the client was told about is there
            assigned = events_per_ticket(s, "assigned")
            assert len(assigned) == tickets and set(assigned.values()) == {1}
        print(f"requests: {dict(statuses)}; tickets saved {tickets}, each assigned once")
    finally:
        stop(api)
        stop(worker)


def test_four_worker_processes_run_every_job_exactly_once(factory, database, tmp_path: Path):
    factory.admin()
    for _ in range(3):
        factory.user("moderator", skills=["billing", "sso"])
    requester = factory.user()
    workers = [spawn_worker(database, tmp_path / f"w{i}.log", {"WORKER_CONCURRENCY": "4"}) for i in range(4)]
    try:
        ids = [factory.ticket(requester, f"Billing question {i}", "Charged twice on my invoice").id for i in range(60)]

        def done() -> bool:
            with session_scope() as s:
                return (
                    s.scalar(select(func.count()).select_from(Job).where(Job.status != "done")) == 0
                    and s.scalar(select(func.count()).select_from(Ticket).where(Ticket.assigned_at.is_(None))) == 0
                )

        assert wait_until(done, 90)
    finally:
        for w in workers:
            stop(w)
    with session_scope() as s:
        jobs = s.execute(select(Job.kind, Job.attempts, Job.locked_by)).all()
        assert all(attempts == 1 for _, attempts, _ in jobs)
        assert Counter(kind for kind, _, _ in jobs)["triage"] == 60
        assert events_per_ticket(s, "triaged") == dict.fromkeys(ids, 1)
        assert events_per_ticket(s, "assigned") == dict.fromkeys(ids, 1)
        per_ticket_kind = Counter(
            s.execute(
                select(EmailMessage.ticket_id, EmailMessage.kind).where(EmailMessage.ticket_id.is_not(None))
            ).all()
        )
        assert set(per_ticket_kind.values()) == {1}
        mails = s.execute(select(EmailMessage.status, EmailMessage.attempts)).all()
        assert all(status == "recorded" and attempts == 1 for status, attempts in mails)
