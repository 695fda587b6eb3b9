"""The work queue: its order, its scope, and that its first page comes off an index instead of a sort."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import event, text

from ticketing_app.db import get_engine, libpq_url, session_scope
from ticketing_app.models import User
from ticketing_app.schemas import TicketFilters
from ticketing_app.services import tickets

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _set(ticket_id: int, **values: object) -> None:
    """Arrange a ticket's triage results directly (the pipeline's own tests cover how they are set)."""
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    with session_scope() as s:
        s.execute(text(f"UPDATE tickets SET {assignments} WHERE id = :id"), {**values, "id": ticket_id})


def _queue(actor: User, **filters: object) -> list[str]:
    with session_scope() as s:
        page = tickets.list_queue(s, s.get(User, actor.id), TicketFilters(active=True, **filters))
    return [item.title for item in page.items]


def test_queue_order_is_priority_then_due_time_then_arrival(factory) -> None:
    admin = factory.admin()
    moderator = factory.user("moderator", skills=["billing"])
    requester = factory.user()
    rows = [  # title, priority, due in hours, status
        ("low soon", "low", 1, "open"),
        ("high later", "high", 8, "open"),
        ("untriaged", None, None, "open"),
        ("high sooner", "high", 2, "in_progress"),
        ("medium", "medium", 4, "open"),
        ("high no due", "high", None, "open"),
        ("high resolved", "high", 1, "resolved"),
        ("high closed", "high", 1, "closed"),
    ]
    for title, priority, due_hours, status in rows:
        ticket = factory.ticket(requester, title=title)
        due = NOW + timedelta(hours=due_hours) if due_hours is not None else None
        _set(ticket.id, priority=priority, due_at=due, status=status, assigned_to_id=moderator.id)
    other = factory.ticket(requester, title="someone else's")
    _set(other.id, priority="high", due_at=NOW, assigned_to_id=admin.id)

    expected = ["high sooner", "high later", "high no due", "medium", "low soon", "untriaged"]
    assert _queue(moderator) == expected
    assert _queue(admin, assigned="any") == ["someone else's", *expected]
    assert _queue(admin, assigned="any", limit=2, offset=1) == expected[:2]
    # A ticket's place follows its priority when a moderator overrides it.
    _set(other.id, priority="low")
    assert _queue(admin, assigned="any")[-4:] == ["medium", "someone else's", "low soon", "untriaged"]


@contextmanager
def _statements() -> Iterator[list[str]]:
    """The SQL the engine sends while the block runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(get_engine(), "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(get_engine(), "before_cursor_execute", record)


def _generic_plan(statement: str) -> str:
    """EXPLAIN the statement as a prepared statement's generic plan: parameters stay unknown."""
    numbers: dict[str, int] = {}
    sql = re.sub(r"%\((\w+)\)s", lambda m: f"${numbers.setdefault(m[1], len(numbers) + 1)}", statement)
    with psycopg.connect(libpq_url(get_engine().url.render_as_string(hide_password=False))) as conn:
        # Sorts and table scans priced out of reach: a plan with either means the index cannot serve.
        conn.execute("SET enable_sort = off")
        conn.execute("SET enable_seqscan = off")
        rows = conn.execute(f"EXPLAIN (GENERIC_PLAN, COSTS OFF) {sql}").fetchall()
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(
    ("role", "assigned", "index"),
    [("admin", "any", "ix_tickets_queue"), ("moderator", "me", "ix_tickets_assignee_queue")],
)
def test_the_first_page_is_read_from_a_queue_index(factory, role: str, assigned: str, index: str) -> None:
    actor = factory.admin() if role == "admin" else factory.user("moderator", skills=["network"])
    ticket = factory.ticket(factory.user())
    _set(ticket.id, priority="high", assigned_to_id=actor.id)
    with _statements() as seen:
        assert _queue(actor, assigned=assigned, limit=25) == ["Cannot log in"]
    page_query = next(sql for sql in seen if "ORDER BY" in sql and "LIMIT" in sql)
    plan = _generic_plan(page_query)
    assert index in plan, plan
    assert "Sort" not in plan, plan


def test_assigned_to_me_shows_a_plain_user_only_their_own_tickets(factory) -> None:
    """Staff see every ticket assigned to them; someone demoted to user with tickets still assigned does not."""
    demoted = factory.user()
    theirs = factory.ticket(demoted, title="their own")
    someone_elses = factory.ticket(factory.user(), title="someone else's")
    for ticket in (theirs, someone_elses):
        _set(ticket.id, assigned_to_id=demoted.id)
    with session_scope() as s:
        page = tickets.list_tickets(s, s.get(User, demoted.id), TicketFilters(assigned="me"))
    assert [item.title for item in page.items] == ["their own"]
    assert page.total == 1
