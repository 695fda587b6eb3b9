"""Recovery: processes killed with SIGKILL in the middle of a burst and started again; the backlog that was in
flight is triaged, assigned and mailed, exactly once, within 30 s of the restart (default lease settings).

Two runs: every worker killed while 100 tickets (made in-process) are worked, one worker restarted; and every
process of the app, the web process (the API-only ASGI app under granian, as the other reliability tests serve
it) and both workers, killed while 300 tickets arrive through POST /api/tickets, all of them restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.fakes.fake_gemini import FakeGeminiServer, keyword_triage_responder
from tests.reliability.procs import spawn_api, spawn_worker, stop
from tests.reliability.test_faults import events_per_ticket, wait_until
from ticketing_app.db import session_scope
from ticketing_app.domain import DELIVERED_EMAIL_STATUSES, EmailKind, EventKind, JobStatus, TriageStatus
from ticketing_app.models import EmailMessage, Job, Ticket

pytestmark = pytest.mark.slow

TICKETS = 100
RECOVERY_LIMIT_S = 30
# The burst through the API: WAVES waves of WAVE_SIZE requests, WAVE_GAP_S apart; the kill comes just after the
# last wave went out (once the workers have routed some tickets), so its requests are in the web process.
WAVES, WAVE_SIZE, WAVE_GAP_S = 10, 30, 0.2


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


def some_assigned() -> bool:
    with session_scope() as s:
        return bool(s.scalar(select(func.count()).select_from(Ticket).where(Ticket.assigned_at.is_not(None))))


def assert_each_once(ids: list[int]) -> None:
    """Every ticket created, triaged and assigned once, each of its two mails once and delivered; no job left."""
    with session_scope() as s:
        for kind in (EventKind.CREATED, EventKind.TRIAGED, EventKind.ASSIGNED):
            assert events_per_ticket(s, kind) == dict.fromkeys(ids, 1), kind
        per_ticket_kind = Counter(
            s.execute(select(EmailMessage.ticket_id, EmailMessage.kind).where(EmailMessage.ticket_id.in_(ids))).all()
        )
        expected = {(i, k): 1 for i in ids for k in (EmailKind.TICKET_ASSIGNED, EmailKind.TICKET_RECEIVED)}
        assert per_ticket_kind == expected
        statuses = set(s.scalars(select(EmailMessage.status).where(EmailMessage.ticket_id.in_(ids))))
        assert statuses <= set(DELIVERED_EMAIL_STATUSES)
        assert set(s.scalars(select(Job.status))) == {JobStatus.DONE}


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
    assert_each_once(ids)


async def _burst(base: str, headers: list[dict[str, str]], kill: asyncio.Event) -> dict[int, int | None]:
    """Sends the waves; sets `kill` once the last one is out and some ticket is routed. Each request's status,
    or None when it got no answer (the web process died under it, or was gone before it was sent)."""
    answers: dict[int, int | None] = {}
    limits = httpx.Limits(max_connections=WAVE_SIZE * WAVES, max_keepalive_connections=WAVE_SIZE * WAVES)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def one(i: int) -> None:
            try:
                r = await client.post(
                    "/api/tickets",
                    json={"title": f"Charged twice, order {i}", "description": "Billing charged my card twice."},
                    headers=headers[i % len(headers)],
                )
                answers[i] = r.status_code
            except httpx.TransportError:
                answers[i] = None

        sent: list[asyncio.Task[None]] = []
        for wave in range(WAVES):
            if wave == WAVES - 1:  # hold the last wave until routing (and its mails) is under way
                deadline = time.monotonic() + 60
                while not await asyncio.to_thread(some_assigned) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            sent += [asyncio.create_task(one(wave * WAVE_SIZE + k)) for k in range(WAVE_SIZE)]
            await asyncio.sleep(WAVE_GAP_S)
        kill.set()
        await asyncio.gather(*sent)
    return answers


def test_every_process_killed_mid_burst_through_the_api_then_restarted_finishes_everything_once_within_30s(
    factory, database, tmp_path: Path
):
    """Web process and workers get SIGKILL while tickets arrive through the API. After all of them are started
    again, every ticket the API answered 201 for is triaged, assigned and mailed exactly once within 30 s; a
    request that got no answer left either a complete ticket (worked like the others) or nothing."""
    factory.admin()
    for skills in (["billing"], ["sso", "2fa"], ["performance"]):
        factory.user("moderator", skills=skills)
    headers = [factory.headers(factory.user()) for _ in range(10)]
    responder = keyword_triage_responder()
    slow = lambda request: dataclasses.replace(responder(request), delay=1.0)  # noqa: E731 - a model's latency
    with FakeGeminiServer(default=slow) as fake:
        env = {"GEMINI_API_KEY": "k", "GEMINI_BASE_URL": fake.base_url}  # lease and everything else: defaults
        procs: list[subprocess.Popen] = []

        def start_all(run: str) -> str:
            procs.extend(spawn_worker(database, tmp_path / f"{run}-worker{i}.log", env) for i in range(2))
            web, base = spawn_api(database, tmp_path / f"{run}-web.log", env)
            procs.append(web)
            return base

        def kill_all() -> None:
            for proc in procs:  # SIGKILL each (with its children: granian's worker) before waiting for any
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            for proc in procs:
                stop(proc, signal.SIGKILL)
            procs.clear()

        try:
            base = start_all("first")

            async def burst_and_kill() -> dict[int, int | None]:
                kill = asyncio.Event()
                burst = asyncio.create_task(_burst(base, headers, kill))
                await kill.wait()
                await asyncio.sleep(0.005)  # the last wave reaches the web process
                kill_all()
                return await burst

            answers = asyncio.run(burst_and_kill())
        finally:
            kill_all()
        with session_scope() as s:
            in_flight = s.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.RUNNING))
            unfinished = s.scalar(select(func.count()).select_from(Ticket).where(Ticket.assigned_at.is_(None)))
            made = Counter(s.scalars(select(Ticket.title)))
        accepted = {i for i, status in answers.items() if status == 201}
        unanswered = {i for i, status in answers.items() if status is None}
        assert len(answers) == WAVES * WAVE_SIZE and accepted | unanswered == set(answers), Counter(answers.values())
        assert unanswered and in_flight > 0 and unfinished > 0, (len(unanswered), in_flight, unfinished)
        assert set(made.values()) == {1}  # no request made two tickets
        titles = {f"Charged twice, order {i}": i for i in answers}
        assert {titles[title] for title in made} - accepted <= unanswered
        assert accepted <= {titles[title] for title in made}  # every 201 is a ticket

        restarted_at = time.monotonic()
        try:
            base = start_all("restart")
            with httpx.Client(base_url=base, timeout=10) as client:  # the restarted web process takes tickets
                r = client.post(
                    "/api/tickets", json={"title": "After the restart", "description": "x"}, headers=headers[0]
                )
                assert r.status_code == 201, r.text
            with session_scope() as s:
                ids = list(s.scalars(select(Ticket.id)))
            assert wait_until(lambda: finished(ids), RECOVERY_LIMIT_S - (time.monotonic() - restarted_at), 0.1), (
                "\n".join(p.read_text()[-1500:] for p in sorted(tmp_path.glob("restart-*.log")))
            )
            recovery_s = time.monotonic() - restarted_at
            time.sleep(1.0)  # anything duplicated would show up now
        finally:
            kill_all()
    print(
        f"\n{len(accepted)} answered 201, {len(unanswered)} unanswered ({len(made) - len(accepted)} of them made a"
        f" ticket); {in_flight} jobs running, {unfinished} tickets unrouted at the kill; done {recovery_s:.1f} s"
        " after the restart"
    )
    assert recovery_s <= RECOVERY_LIMIT_S
    assert_each_once(ids)
