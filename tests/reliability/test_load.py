"""Load: 200 concurrent ticket submissions from 50 users through the HTTP API."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.factories import PASSWORD
from tests.reliability.procs import spawn_api, spawn_worker, stop
from ticketing_app.db import session_scope
from ticketing_app.models import Job, Ticket, TicketEvent

pytestmark = pytest.mark.slow


async def _submit_all(base: str, tokens: list[str], count: int) -> list[int]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(i: int) -> int:
            r = await client.post(
                "/api/tickets",
                headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
                json={
                    "title": f"Charged twice, order {i}",
                    "description": "My card was charged twice for one invoice.",
                },
            )
            return r.status_code

        return await asyncio.gather(*(one(i) for i in range(count)))


def test_200_concurrent_submissions_are_all_saved_triaged_and_fairly_assigned(factory, database, tmp_path: Path):
    factory.admin()
    moderators = [factory.user("moderator", skills=["billing"]) for _ in range(4)]
    api, base = spawn_api(database, tmp_path / "api.log", {"DB_POOL_SIZE": "20"})
    workers = [spawn_worker(database, tmp_path / f"w{i}.log", {"WORKER_CONCURRENCY": "4"}) for i in range(2)]
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            tokens = [
                c.post(
                    "/api/auth/signup",
                    json={"name": f"User {i}", "email": f"load{i}@example.com", "password": PASSWORD},
                ).json()["access_token"]
                for i in range(50)
            ]
        started = time.monotonic()
        statuses = asyncio.run(_submit_all(base, tokens, 200))
        elapsed = time.monotonic() - started
        assert Counter(statuses) == {201: 200}

        def all_assigned() -> bool:
            with session_scope() as s:
                return s.scalar(select(func.count()).select_from(Ticket).where(Ticket.assigned_at.is_(None))) == 0

        deadline = time.monotonic() + 90
        while not all_assigned() and time.monotonic() < deadline:
            time.sleep(0.25)
        drained = time.monotonic() - started
        assert all_assigned()
    finally:
        stop(api)
        for w in workers:
            stop(w)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 200
        per_ticket = Counter(s.scalars(select(TicketEvent.ticket_id).where(TicketEvent.kind == "assigned")))
        assert len(per_ticket) == 200 and set(per_ticket.values()) == {1}
        triaged = Counter(s.scalars(select(TicketEvent.ticket_id).where(TicketEvent.kind == "triaged")))
        assert len(triaged) == 200 and set(triaged.values()) == {1}
        assert s.scalar(select(func.count()).select_from(Job).where(Job.status != "done")) == 0
        spread = Counter(s.scalars(select(Ticket.assigned_to_id)))
    assert set(spread) == {m.id for m in moderators}
    assert max(spread.values()) - min(spread.values()) <= 2, spread  # fair load: 50 each, give or take
    print(f"200 submissions in {elapsed:.2f} s, all triaged and assigned after {drained:.2f} s; spread {spread}")
