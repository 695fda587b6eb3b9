"""SLAs end to end on PostgreSQL: targets in business hours, the pending pause, first response, the worker's
warnings (once, with several workers), and the REST fields."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from tests.factories import Factory
from ticketing_app import businesstime
from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import EmailKind, EventKind
from ticketing_app.errors import InvalidInput, PermissionDenied
from ticketing_app.models import EmailMessage, Ticket, TicketEvent, User
from ticketing_app.schemas import CommentCreate, TicketUpdate
from ticketing_app.services import sla, tickets

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture()
def hours(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Set the business hours for one test: hours("24/7") or hours("mon-fri 09:00-17:00", "Europe/Berlin")."""

    def use(business_hours: str, zone: str = "UTC", holidays: str = "") -> None:
        monkeypatch.setenv("BUSINESS_HOURS", business_hours)
        monkeypatch.setenv("BUSINESS_TIMEZONE", zone)
        monkeypatch.setenv("HOLIDAYS", holidays)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def _set(ticket_id: int, **values: object) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    with session_scope() as s:
        s.execute(text(f"UPDATE tickets SET {assignments} WHERE id = :id"), {**values, "id": ticket_id})


def _get(ticket_id: int) -> Ticket:
    with session_scope() as s:
        ticket = s.get(Ticket, ticket_id)
        s.expunge(ticket)
        return ticket


def _update(actor: User, ticket_id: int, **fields: object) -> None:
    with session_scope() as s:
        tickets.update_ticket(s, s.get(User, actor.id), ticket_id, TicketUpdate(**fields))


def _comment(actor: User, ticket_id: int, body: str = "Here you go.", internal: bool = False) -> None:
    with session_scope() as s:
        tickets.add_comment(s, s.get(User, actor.id), ticket_id, CommentCreate(body=body, internal=internal))


def _staffed(factory: Factory, *, filed: datetime | None = None, priority: str = "high") -> tuple[User, User, Ticket]:
    """An admin, a requester and their ticket (filed at `filed`), with a priority set by the admin."""
    admin = factory.admin()
    requester = factory.user()
    ticket = factory.ticket(requester)
    if filed is not None:
        _set(ticket.id, created_at=filed)
    _set(ticket.id, assigned_to_id=admin.id, assigned_at=datetime.now(UTC))
    _update(admin, ticket.id, priority=priority, reason="known customer")
    return admin, requester, ticket


def test_priority_sets_both_targets_in_business_hours(factory: Factory, hours) -> None:
    hours("mon-fri 09:00-17:00", "Europe/Berlin")
    friday = datetime(2026, 12, 4, 16, 30, tzinfo=BERLIN)  # 30 minutes before the weekend
    admin, _, ticket = _staffed(factory, filed=friday, priority="high")  # 1h first response, 4h resolution
    t = _get(ticket.id)
    assert t.first_response_due_at == datetime(2026, 12, 7, 9, 30, tzinfo=BERLIN)
    assert t.due_at == datetime(2026, 12, 7, 12, 30, tzinfo=BERLIN)
    assert t.first_response_warn_at == datetime(2026, 12, 7, 9, 18, tzinfo=BERLIN)  # 80% of 60 minutes
    assert t.sla_warn_at == datetime(2026, 12, 7, 11, 42, tzinfo=BERLIN)  # 80% of 4 hours
    # A new priority moves both targets; the start stays the arrival.
    _update(admin, ticket.id, priority="low", reason="not urgent after all")  # 8h / 72h
    t = _get(ticket.id)
    assert t.first_response_due_at == datetime(2026, 12, 7, 16, 30, tzinfo=BERLIN)
    assert t.due_at == businesstime.add(get_settings().business_schedule(), friday, 72 * 3600)


def test_triage_sets_the_first_response_target(factory: Factory, hours) -> None:
    from ticketing_app.jobs.handlers import HANDLERS, on_dead
    from ticketing_app.jobs.worker import drain

    hours("24/7")
    factory.admin()
    ticket = factory.ticket(factory.user(), "Charged twice", "My card was charged twice for one invoice.")
    drain(HANDLERS, on_dead)
    t = _get(ticket.id)
    assert t.priority is not None
    expected = timedelta(hours=getattr(get_settings(), f"sla_first_response_hours_{t.priority}"))
    assert t.first_response_due_at == t.created_at + expected
    assert t.due_at == t.created_at + timedelta(hours=getattr(get_settings(), f"sla_hours_{t.priority}"))


def test_pending_pauses_the_clock_and_the_requesters_reply_resumes_it(factory: Factory, hours) -> None:
    hours("24/7")
    filed = datetime.now(UTC) - timedelta(hours=10)
    admin, requester, ticket = _staffed(factory, filed=filed, priority="medium")  # 24h to resolve
    assert _get(ticket.id).due_at == filed + timedelta(hours=24)

    _update(admin, ticket.id, status="pending", reason="asked for the invoice number")
    t = _get(ticket.id)
    assert t.status == "pending" and t.sla_paused_at is not None
    assert sla.resolution_clock(t, datetime.now(UTC)).describe() == "paused"
    _set(ticket.id, sla_paused_at=datetime.now(UTC) - timedelta(hours=2))  # it waited two hours

    _comment(requester, ticket.id, "The number is 4711.")
    t = _get(ticket.id)
    assert t.status == "in_progress" and t.sla_paused_at is None
    assert t.sla_paused_seconds == pytest.approx(7200, abs=5)
    assert t.due_at == filed + timedelta(hours=24, seconds=t.sla_paused_seconds)  # moved out by the pause
    with session_scope() as s:
        event = s.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == EventKind.STATUS_CHANGED)
            .order_by(TicketEvent.id.desc())
        ).first()
        assert (event.actor_id, event.data["old"], event.data["new"]) == (requester.id, "pending", "in_progress")

    # Staff replying on a pending ticket leave it pending; an internal note never moves anything.
    _update(admin, ticket.id, status="pending")
    _comment(admin, ticket.id, "Still waiting for you.")
    assert _get(ticket.id).status == "pending"


def test_resolving_stops_the_clock_and_reopening_moves_the_due_time(factory: Factory, hours) -> None:
    hours("24/7")
    filed = datetime.now(UTC) - timedelta(hours=1)
    admin, _, ticket = _staffed(factory, filed=filed, priority="high")
    _update(admin, ticket.id, status="resolved")
    _set(ticket.id, sla_paused_at=datetime.now(UTC) - timedelta(hours=3))
    assert sla.resolution_clock(_get(ticket.id), datetime.now(UTC)).describe() == "met"
    _update(admin, ticket.id, status="open")
    t = _get(ticket.id)
    assert t.due_at == filed + timedelta(hours=4, seconds=t.sla_paused_seconds)
    assert t.sla_paused_seconds == pytest.approx(3 * 3600, abs=5)


def test_pending_moves_follow_the_rules(factory: Factory, hours) -> None:
    hours("24/7")
    admin, requester, ticket = _staffed(factory)
    with pytest.raises(PermissionDenied):
        _update(requester, ticket.id, status="pending")
    _update(admin, ticket.id, status="resolved")
    with pytest.raises(InvalidInput, match="cannot go from resolved to pending"):
        _update(admin, ticket.id, status="pending")
    _update(admin, ticket.id, status="in_progress")
    _update(admin, ticket.id, status="pending")
    _update(admin, ticket.id, status="resolved")  # straight from pending
    assert _get(ticket.id).status == "resolved"


def test_the_first_public_staff_reply_is_the_first_response(factory: Factory, hours) -> None:
    hours("24/7")
    admin, requester, ticket = _staffed(factory)
    _comment(requester, ticket.id, "Any news?")
    _comment(admin, ticket.id, "Looking into it.", internal=True)
    assert _get(ticket.id).first_responded_at is None  # neither the requester nor a note counts
    before = datetime.now(UTC)
    _comment(admin, ticket.id, "We found the double charge.")
    first = _get(ticket.id).first_responded_at
    assert first is not None and first >= before
    _comment(admin, ticket.id, "Refund is on its way.")
    assert _get(ticket.id).first_responded_at == first
    clock = sla.first_response_clock(_get(ticket.id), datetime.now(UTC))
    assert (clock.done, clock.breached, clock.describe()) == (True, False, "met")


def test_an_admins_own_ticket_reply_is_not_a_first_response(factory: Factory, hours) -> None:
    hours("24/7")
    admin = factory.admin()
    ticket = factory.ticket(admin)
    _update(admin, ticket.id, priority="high", reason="mine")
    _comment(admin, ticket.id, "Adding detail to my own ticket.")
    assert _get(ticket.id).first_responded_at is None


def _sla_mails() -> Counter[tuple[str, str, int]]:
    with session_scope() as s:
        rows = s.execute(
            select(EmailMessage.kind, EmailMessage.to_address, EmailMessage.ticket_id).where(
                EmailMessage.kind.in_([EmailKind.SLA_WARNING, EmailKind.SLA_BREACHED])
            )
        ).all()
    return Counter((kind, to, ticket_id) for kind, to, ticket_id in rows)


def _check_once() -> dict[str, int]:
    with session_scope() as s:
        return sla.check(s)


def _check_concurrently(workers: int = 2) -> list[dict[str, int]]:
    barrier = threading.Barrier(workers)
    results: list[dict[str, int]] = []

    def run() -> None:
        barrier.wait()
        with session_scope() as s:
            counts = sla.check(s, limit=7)  # small batches: the two runs interleave
            s.execute(text("SELECT pg_sleep(0.05)"))  # hold the stamps' locks a moment before committing
        results.append(counts)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_warnings_and_breaches_are_mailed_once_per_threshold(factory: Factory, hours) -> None:
    hours("24/7")
    admin = factory.admin()
    second_admin = factory.user("admin")
    moderator = factory.user("moderator", skills=["billing"])
    requester = factory.user()
    ids = []
    # High: 1h first response, 4h resolution. Filed 3.5 hours ago: the first response is breached (its warning
    # came too late to send), the resolution is past its 80% warning but not due.
    filed = datetime.now(UTC) - timedelta(hours=3.5)
    for n in range(10):
        ticket = factory.ticket(requester, f"Slow {n}")
        _set(ticket.id, created_at=filed, assigned_to_id=moderator.id, assigned_at=filed)
        _update(admin, ticket.id, priority="high", reason="escalated")
        ids.append(ticket.id)
    fresh = factory.ticket(requester, "Just in")
    _set(fresh.id, assigned_to_id=moderator.id, assigned_at=datetime.now(UTC))
    _update(admin, fresh.id, priority="low", reason="minor")
    paused = factory.ticket(requester, "Waiting on the customer")
    _set(paused.id, created_at=filed, assigned_to_id=moderator.id, assigned_at=filed, first_responded_at=filed)
    _update(admin, paused.id, priority="high", reason="escalated")
    _update(admin, paused.id, status="pending")

    # Two concurrent runs, then one more as the next period's would: a ticket locked by one run is skipped by
    # the other (SKIP LOCKED), so under load a crossing may wait for the next run; it is never mailed twice.
    results = [*_check_concurrently(), _check_once()]
    assert sum(r["first_response_breach"] for r in results) == 10
    assert sum(r["first_response_warning"] for r in results) == 10  # stamped, not mailed: already breached
    assert sum(r["resolution_warning"] for r in results) == 10  # not the pending one: its clock stands still
    assert sum(r["resolution_breach"] for r in results) == 0
    mails = _sla_mails()
    expected = Counter(
        {(EmailKind.SLA_WARNING, moderator.email, i): 1 for i in ids}
        | {(EmailKind.SLA_BREACHED, a.email, i): 1 for i in ids for a in (admin, second_admin)}
    )
    assert mails == expected

    # Nothing crossed since: nothing more. Then the resolution targets pass: one breach mail per admin each.
    assert not any(any(r.values()) for r in _check_concurrently())
    with session_scope() as s:
        s.execute(text("UPDATE tickets SET due_at = now() - interval '1 minute' WHERE id = ANY(:ids)"), {"ids": ids})
    results = [*_check_concurrently(3), _check_once()]
    assert sum(r["resolution_breach"] for r in results) == 10
    breaches = Counter(kind for kind, _, _ in _sla_mails().elements())
    assert breaches[EmailKind.SLA_BREACHED] == 10 * 2 * 2 and breaches[EmailKind.SLA_WARNING] == 10
    with session_scope() as s:
        mail = s.scalars(select(EmailMessage).where(EmailMessage.kind == EmailKind.SLA_WARNING)).first()
        assert "resolution" in mail.subject and "Slow" in mail.subject and "/tickets/" in mail.body_text


def test_a_later_target_warns_again(factory: Factory, hours) -> None:
    hours("24/7")
    filed = datetime.now(UTC) - timedelta(hours=3.5)
    admin, _, ticket = _staffed(factory, filed=filed, priority="high")
    with session_scope() as s:
        assert sla.check(s)["resolution_warning"] == 1
    assert _get(ticket.id).sla_warned_at is not None
    _update(admin, ticket.id, priority="low", reason="not urgent after all")  # 72h: the warning is far off again
    t = _get(ticket.id)
    assert t.sla_warned_at is None and t.first_response_breach_mailed_at is None


def test_rest_shows_the_sla_and_accepts_pending(api, factory: Factory, hours) -> None:
    hours("24/7")
    filed = datetime.now(UTC) - timedelta(hours=2)
    admin, requester, ticket = _staffed(factory, filed=filed, priority="high")
    headers = factory.headers(admin)
    body = api.get(f"/api/tickets/{ticket.id}", headers=headers).json()
    assert body["first_responded_at"] is None
    assert datetime.fromisoformat(body["first_response_due_at"]) == filed + timedelta(hours=1)
    assert body["sla"]["first_response"] == {"due_at": body["first_response_due_at"], "breached": True}
    assert body["sla"]["resolution"] == {"due_at": body["due_at"], "breached": False, "paused": False}

    r = api.patch(f"/api/tickets/{ticket.id}", json={"status": "pending"}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    assert r.json()["sla"]["resolution"]["paused"] is True
    listed = api.get("/api/tickets", params={"status": "pending"}, headers=headers).json()
    assert [item["id"] for item in listed["items"]] == [ticket.id]
    assert api.get("/api/tickets", params={"status": "waiting"}, headers=headers).status_code == 422

    r = api.post(f"/api/tickets/{ticket.id}/comments", json={"body": "Done."}, headers=factory.headers(requester))
    assert r.status_code == 201
    mine = api.get(f"/api/tickets/{ticket.id}", headers=factory.headers(requester)).json()
    assert mine["status"] == "in_progress" and mine["sla"]["resolution"]["paused"] is False


def test_the_overview_shows_attainment_per_priority(factory: Factory, hours) -> None:
    from ticketing_app.services import reports

    hours("24/7")
    now = datetime.now(UTC)
    admin = factory.admin()
    requester = factory.user()

    def filed(hours_ago: float, priority: str) -> int:
        ticket = factory.ticket(requester)
        _set(ticket.id, created_at=now - timedelta(hours=hours_ago), assigned_to_id=admin.id, assigned_at=now)
        _update(admin, ticket.id, priority=priority, reason="set")
        return ticket.id

    on_time = filed(0.5, "high")  # replied and resolved within 1h / 4h
    _comment(admin, on_time, "On it.")
    _update(admin, on_time, status="resolved")
    late = filed(6, "high")  # no reply, past both targets
    _comment(requester, late, "Hello?")
    inside = filed(0.2, "high")  # inside both targets: not decided yet
    medium_late_reply = filed(5, "medium")  # replied after 4h: missed; resolution (24h) still running
    _set(medium_late_reply, first_responded_at=now - timedelta(minutes=30))
    old = filed(24 * 20, "low")  # filed before the window: left out
    assert inside and old

    with session_scope() as s:
        overview = reports.ticket_overview(s, s.get(User, admin.id))
    rows = {r["priority"]: r for r in overview["sla_attainment"]}
    assert overview["sla_policy"]["targets"]["high"] == {"first_response": 1, "resolution": 4}
    assert (overview["sla_policy"]["business_hours"], overview["sla_policy"]["timezone"]) == ("24/7", "UTC")
    assert list(rows) == ["high", "medium", "low"]
    assert rows["high"]["first_response"] == {"met": 1, "missed": 1, "rate": 0.5}
    assert rows["high"]["resolution"] == {"met": 1, "missed": 1, "rate": 0.5}
    assert rows["medium"]["first_response"] == {"met": 0, "missed": 1, "rate": 0.0}
    assert rows["medium"]["resolution"] == {"met": 0, "missed": 0, "rate": None}
    assert rows["low"]["first_response"]["rate"] is None


@pytest.mark.parametrize("threshold", sla.THRESHOLDS, ids=lambda t: t.stamp)
def test_each_check_reads_its_small_partial_index(factory: Factory, threshold) -> None:
    """The check's claim is served by the partial index holding only the tickets still waiting for that mail
    (its predicate written the same way), however many tickets there are: here 3,000 already told and a few
    waiting, analysed, so the plan does not hang on an empty table's guesses."""
    ticket = factory.ticket(factory.user())
    copied = [c.name for c in Ticket.__table__.columns if c.name not in ("id", "number") and c.computed is None]
    columns = ", ".join(copied)
    with session_scope() as s:
        s.execute(
            text(f"INSERT INTO tickets ({columns}) SELECT {columns} FROM tickets, generate_series(1, 3000)"),
        )
        # everything told and due, except the first ticket, which waits for every mail
        stamps = ", ".join(f"{t.stamp} = now()" for t in sla.THRESHOLDS)
        moments = ", ".join(f"{t.moment} = now() - interval '1 hour'" for t in sla.THRESHOLDS)
        s.execute(text(f"UPDATE tickets SET {moments}, status = 'open'"))
        s.execute(text(f"UPDATE tickets SET {stamps} WHERE id <> :id"), {"id": ticket.id})
    with session_scope() as s:
        s.execute(text("ANALYZE tickets"))
    claim = str(sla._claim_sql(threshold))
    inner = claim[claim.index("SELECT id FROM tickets") : claim.index("FOR UPDATE")].replace(":limit", "200")
    with session_scope() as s:
        plan = "\n".join(s.execute(text(f"EXPLAIN {inner}")).scalars())
    index = {
        "first_response_warned_at": "ix_tickets_first_response_warn",
        "first_response_breach_mailed_at": "ix_tickets_first_response_breach",
        "sla_warned_at": "ix_tickets_sla_warn",
        "sla_breach_mailed_at": "ix_tickets_sla_breach",
    }[threshold.stamp]
    assert index in plan, plan


def test_the_periodic_check_runs_in_its_own_transaction(factory: Factory, hours) -> None:
    hours("24/7")
    _staffed(factory, filed=datetime.now(UTC) - timedelta(hours=5), priority="high")
    assert sla.check_deadlines()["resolution_breach"] == 1
    # both targets missed: two breach mails to the one admin, once
    assert sum(n for (kind, _, _), n in _sla_mails().items() if kind == EmailKind.SLA_BREACHED) == 2
    assert not any(sla.check_deadlines().values())


def test_the_upgrade_counts_tickets_already_past_due_as_told(database: str) -> None:
    """Migration 0012 on a database with tickets: those already past due get no breach mail at the first check;
    a pending ticket survives a downgrade as in progress."""
    import secrets

    from sqlalchemy import create_engine, make_url

    from ticketing_app.migrations import downgrade_database, upgrade_database

    url = make_url(database)
    name = f"sla_upgrade_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(url.set(database=name))
    try:
        upgrade_database("0006", engine=engine)
        with engine.begin() as conn:
            user = conn.execute(
                text("INSERT INTO users (name, email, password_hash) VALUES ('A', 'a@example.com', 'x') RETURNING id")
            ).scalar_one()
            for title, due in (("late", "now() - interval '1 day'"), ("on time", "now() + interval '1 day'")):
                conn.execute(
                    text(
                        "INSERT INTO tickets (title, description, created_by_id, required_skills, priority, due_at)"
                        f" VALUES (:title, 'x', :user, '{{}}', 'high', {due})"
                    ),
                    {"title": title, "user": user},
                )
        upgrade_database(engine=engine)
        with engine.begin() as conn:
            stamped = dict(conn.execute(text("SELECT title, sla_breach_mailed_at IS NOT NULL FROM tickets")).all())
            assert stamped == {"late": True, "on time": False}
            conn.execute(text("UPDATE tickets SET status = 'pending' WHERE title = 'late'"))
        downgrade_database("0006", engine=engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM tickets WHERE title = 'late'")).scalar_one() == "in_progress"
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_pending_tickets_stay_in_the_active_queue(factory: Factory, hours) -> None:
    from ticketing_app.schemas import TicketFilters

    hours("24/7")
    admin, _, ticket = _staffed(factory)
    _update(admin, ticket.id, status="pending")
    with session_scope() as s:
        actor = s.get(User, admin.id)
        active = tickets.list_queue(s, actor, TicketFilters(active=True, assigned="any"))
        pending = tickets.list_queue(s, actor, TicketFilters(status="pending", assigned="any"))
    assert [t.id for t in active.items] == [ticket.id] == [t.id for t in pending.items]
    assert active.items[0].status == "pending" and active.items[0].sla.resolution.paused
