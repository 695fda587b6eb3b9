"""The admin overview's figures: one grouped scan gives the same counts as counting each breakdown."""

from __future__ import annotations

from sqlalchemy import text, update

from ticketing_app.db import session_scope
from ticketing_app.jobs import queue
from ticketing_app.models import Ticket, User
from ticketing_app.services import reports


def test_breakdowns_tell_untriaged_from_totals(factory) -> None:
    admin = factory.admin()
    requester = factory.user()
    ids = [factory.ticket(requester, f"Ticket {i}").id for i in range(5)]
    with session_scope() as s:
        # two billing/high by gemini, one bug/low offline, two never triaged (category and priority NULL)
        s.execute(
            update(Ticket)
            .where(Ticket.id.in_(ids[:2]))
            .values(category="billing", priority="high", triage_provider="gemini", status="in_progress")
        )
        s.execute(
            update(Ticket).where(Ticket.id == ids[2]).values(category="bug", priority="low", triage_provider="offline")
        )
    with session_scope() as s:
        overview = reports.ticket_overview(s, s.get(User, admin.id))
    assert overview["total"] == 5
    assert overview["by_category"] == {"billing": 2, "bug": 1, "untriaged": 2}
    assert overview["by_priority"] == {"high": 2, "low": 1, "untriaged": 2}
    assert overview["by_status"] == {"in_progress": 2, "open": 3}
    assert overview["by_provider"] == {"gemini": 2, "offline": 1, "untriaged": 2}
    assert sum(day["tickets"] for day in overview["per_day"]) == 5


def test_done_jobs_are_estimated_only_on_a_huge_table(clean_db: str, monkeypatch) -> None:
    with session_scope() as s:
        for i in range(3):
            queue.enqueue(s, "noop", {"i": i})
        s.execute(text("UPDATE jobs SET status = 'done', finished_at = now() WHERE payload->>'i' <> '0'"))
    with session_scope() as s:
        assert queue.counts_by_status(s) == ({"queued": 1, "done": 2}, False)
    monkeypatch.setattr(queue, "EXACT_DONE_COUNT_LIMIT", -1)  # as if the planner saw a huge table
    with session_scope() as s:
        s.execute(text("ANALYZE jobs"))
        counts, estimated = queue.counts_by_status(s)
    assert estimated and counts["queued"] == 1 and counts.get("done", 0) == 2
