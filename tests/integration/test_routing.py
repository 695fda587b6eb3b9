"""Routing: best skill coverage, then lightest load, then round robin; admin fallback; no pile-ups."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from tests.factories import Factory
from ticketing_app.db import session_scope
from ticketing_app.jobs import queue
from ticketing_app.jobs.handlers import HANDLERS, on_dead
from ticketing_app.jobs.worker import Worker, drain
from ticketing_app.models import EmailMessage, Ticket, TicketEvent, User
from ticketing_app.schemas import TicketFilters
from ticketing_app.services import routing
from ticketing_app.services.tickets import list_tickets


def route(skills: list[str]) -> routing.RoutingDecision:
    with session_scope() as s:
        return routing.choose_assignee(s, skills)


def chosen(skills: list[str]) -> int | None:
    decision = route(skills)
    return decision.assignee.id if decision.assignee else None


def give_load(factory: Factory, assignee: User, open_count: int, *, closed_count: int = 0) -> None:
    """Tickets assigned to `assignee`: `open_count` open or in progress, `closed_count` resolved or closed."""
    requester = factory.user()
    statuses = ["open", "in_progress"] * open_count
    statuses = statuses[:open_count] + (["resolved", "closed"] * closed_count)[:closed_count]
    for status in statuses:
        t = factory.ticket(requester, "Existing work")
        with session_scope() as s:
            s.execute(update(Ticket).where(Ticket.id == t.id).values(assigned_to_id=assignee.id, status=status))


def set_user(user: User, **values: object) -> None:
    with session_scope() as s:
        s.execute(update(User).where(User.id == user.id).values(**values))


def ready_for_routing(factory: Factory, requester: User, skills: list[str], title: str = "Help needed") -> int:
    """A ticket whose triage already found `skills` (the queued triage job then only queues routing)."""
    t = factory.ticket(requester, title)
    with session_scope() as s:
        s.execute(
            update(Ticket)
            .where(Ticket.id == t.id)
            .values(
                required_skills=skills,
                triage_status="done",
                priority="medium",
                category="billing",
                summary="Customer needs help.",
            )
        )
    return t.id


def ticket(ticket_id: int) -> Ticket:
    with session_scope() as s:
        found = s.get(Ticket, ticket_id)
        assert found is not None
        return found


# ----- the order of preference -----


def test_best_skill_coverage_wins_even_over_load(factory: Factory) -> None:
    factory.admin()
    factory.user("moderator", skills=["billing"])
    two = factory.user("moderator", skills=["billing", "payments"])
    three = factory.user("moderator", skills=["Refunds", "billing", "payments", "sso"])
    give_load(factory, three, 4)
    decision = route(["billing", "payments", "refunds"])
    assert decision.assignee is not None and decision.assignee.id == three.id
    assert decision.matched_skills == ("billing", "payments", "refunds")
    assert decision.reason == "matched: billing, payments, refunds; 4 open"
    assert chosen(["billing", "payments"]) in {two.id, three.id}
    give_load(factory, two, 5)
    assert chosen(["billing", "payments"]) == three.id


def test_equal_coverage_goes_to_the_lower_load(factory: Factory) -> None:
    factory.admin()
    busy = factory.user("moderator", skills=["billing", "payments"])
    light = factory.user("moderator", skills=["billing", "invoicing"])
    give_load(factory, busy, 2)
    give_load(factory, light, 1, closed_count=5)  # resolved and closed tickets are not load
    decision = route(["billing"])
    assert decision.assignee is not None and decision.assignee.id == light.id
    assert decision.reason == "matched: billing; 1 open"


def test_equal_coverage_and_load_goes_to_the_least_recently_assigned(factory: Factory) -> None:
    factory.admin()
    now = datetime.now(UTC)
    recent = factory.user("moderator", skills=["sso"])
    earlier = factory.user("moderator", skills=["sso"])
    set_user(recent, last_assigned_at=now - timedelta(hours=1))
    set_user(earlier, last_assigned_at=now - timedelta(hours=2))
    assert chosen(["sso"]) == earlier.id
    never = factory.user("moderator", skills=["SSO"])
    assert chosen(["sso"]) == never.id  # never assigned comes first


def test_round_robin_through_the_pipeline(factory: Factory) -> None:
    factory.admin()
    mods = [factory.user("moderator", skills=["billing"]) for _ in range(3)]
    requester = factory.user()
    order = []
    for n in range(6):
        ticket_id = ready_for_routing(factory, requester, ["billing"], f"Billing question {n}")
        drain(HANDLERS, on_dead)
        order.append(ticket(ticket_id).assigned_to_id)
        with session_scope() as s:  # resolved at once: every moderator has the same load (0) again
            s.execute(update(Ticket).where(Ticket.id == ticket_id).values(status="resolved"))
    ids = [m.id for m in mods]
    assert order == ids + ids


def test_synonyms_match(factory: Factory) -> None:
    factory.admin()
    factory.user("moderator", skills=["billing"])
    mfa = factory.user("moderator", skills=["2FA", "Single Sign-On"])
    pg = factory.user("moderator", skills=["PostgreSQL"])
    decision = route(["mfa"])
    assert decision.assignee is not None and decision.assignee.id == mfa.id
    assert decision.reason == "matched: mfa; 0 open"
    assert chosen(["two-factor", "sso"]) == mfa.id
    assert chosen(["postgres"]) == pg.id


def test_no_substring_matches_in_routing(factory: Factory) -> None:
    admin = factory.admin()
    factory.user("moderator", skills=["css", "javascript"])
    decision = route(["c", "java"])
    assert decision.assignee is not None and decision.assignee.id == admin.id
    assert "admin fallback" in decision.reason


def test_inactive_moderators_and_plain_users_are_never_chosen(factory: Factory) -> None:
    admin = factory.admin()
    inactive = factory.user("moderator", skills=["billing", "payments", "refunds"])
    set_user(inactive, is_active=False)
    factory.user("user", skills=["billing", "payments", "refunds"])
    weak = factory.user("moderator", skills=["payments"])
    assert chosen(["billing", "payments", "refunds"]) == weak.id
    set_user(weak, is_active=False)
    decision = route(["billing", "payments", "refunds"])
    assert decision.assignee is not None and decision.assignee.id == admin.id


def test_no_match_falls_back_to_the_least_loaded_active_admin(factory: Factory) -> None:
    first = factory.admin("first-admin@example.com")
    second = factory.admin("second-admin@example.com")
    idle_but_inactive = factory.admin("third-admin@example.com")
    set_user(idle_but_inactive, is_active=False)
    factory.user("moderator", skills=["billing"])
    give_load(factory, first, 2)
    give_load(factory, second, 1)
    decision = route(["Quantum Physics"])
    assert decision.assignee is not None and decision.assignee.id == second.id
    assert decision.reason == "no moderator with the required skills (Quantum Physics); admin fallback, 1 open"
    assert decision.matched_skills == ()
    nothing = route([])
    assert nothing.assignee is not None and nothing.assignee.id == second.id
    assert nothing.reason == "no moderator with the required skills (none identified); admin fallback, 1 open"


def test_no_admin_leaves_the_ticket_unassigned_but_visible_to_admins(factory: Factory) -> None:
    admin = factory.admin()
    factory.user("moderator", skills=["billing"])
    requester = factory.user()
    set_user(admin, is_active=False)
    ticket_id = ready_for_routing(factory, requester, ["kubernetes"], "Cluster is down")
    drain(HANDLERS, on_dead)
    t = ticket(ticket_id)
    assert t.assigned_to_id is None and t.assigned_at is not None
    assert t.assignment_reason == (
        "no moderator with the required skills (kubernetes) and no active admin; left unassigned"
    )
    with session_scope() as s:
        [event] = s.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "assigned")
        ).all()
        assert event.data == {"to": None, "reason": t.assignment_reason}
        mails = s.scalars(select(EmailMessage).where(EmailMessage.ticket_id == ticket_id)).all()
        assert [m.kind for m in mails] == ["ticket_received"]  # the requester still hears from us

    set_user(admin, is_active=True)  # an admin comes back: the ticket waits in the unassigned queue
    with session_scope() as s:
        actor = s.get(User, admin.id)
        page = list_tickets(s, actor, TicketFilters(assigned="unassigned"))
        assert [item.id for item in page.items] == [ticket_id]
        assert page.items[0].assignment_reason == t.assignment_reason
    # Routing again later is not automatic: the single assign job already ran.
    assert drain(HANDLERS, on_dead) == 0
    assert ticket(ticket_id).assigned_to_id is None


def test_reason_and_assignment_are_recorded_by_the_pipeline(factory: Factory) -> None:
    factory.admin()
    mod = factory.user("moderator", skills=["Billing", "payments"])
    give_load(factory, mod, 3)
    requester = factory.user()
    ticket_id = ready_for_routing(factory, requester, ["billing", "payments"], "Charged twice")
    before = datetime.now(UTC)
    drain(HANDLERS, on_dead)
    t = ticket(ticket_id)
    assert t.assigned_to_id == mod.id
    assert t.assignment_reason == "matched: billing, payments; 3 open"
    with session_scope() as s:
        assert s.get(User, mod.id).last_assigned_at >= before
        [event] = s.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "assigned")
        ).all()
        assert event.actor_id is None
        assert event.data["reason"] == "matched: billing, payments; 3 open"
        assert event.data["to"]["id"] == mod.id


def test_concurrent_routing_spreads_tickets_evenly(factory: Factory) -> None:
    """20 routing decisions at the same instant: the advisory lock makes each one see the others' load."""
    factory.admin()
    mods = [factory.user("moderator", skills=["billing", "payments"]) for _ in range(4)]
    requester = factory.user()
    drain(HANDLERS, on_dead)  # the welcome e-mails
    ticket_ids = [ready_for_routing(factory, requester, ["payments", "billing"], f"Refund {n}") for n in range(20)]
    worker = Worker(HANDLERS, worker_id="router")

    def claim_all() -> list[queue.ClaimedJob]:
        with session_scope() as s:
            return queue.claim_jobs(s, worker.worker_id, limit=50, lease_seconds=60)

    triage_jobs = claim_all()
    assert {j.kind for j in triage_jobs} == {"triage"}
    for job in triage_jobs:  # triage is already done: each only queues its ticket's assign job
        assert worker.run_job(job) == "done"
    jobs = claim_all()
    assert len(jobs) == 20 and {j.kind for j in jobs} == {"assign"}
    outcomes: list[str] = []
    barrier = threading.Barrier(len(jobs))

    def run(job: queue.ClaimedJob) -> None:
        barrier.wait()
        outcomes.append(worker.run_job(job))

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes == ["done"] * 20
    with session_scope() as s:
        rows = s.execute(select(Ticket.assigned_to_id, Ticket.assignment_reason).where(Ticket.id.in_(ticket_ids))).all()
    assert Counter(r.assigned_to_id for r in rows) == {m.id: 5 for m in mods}
    # Each decision saw the ones before it: four at "0 open", four at "1 open", ... four at "4 open".
    loads = Counter(r.assignment_reason.rsplit("; ", 1)[1] for r in rows)
    assert loads == {f"{n} open": 4 for n in range(5)}


# ----- never the requester -----


def test_a_moderator_is_never_routed_their_own_ticket(factory: Factory) -> None:
    admin = factory.admin()
    best = factory.user("moderator", skills=["billing", "payments"])
    weaker = factory.user("moderator", skills=["billing"])
    own = ready_for_routing(factory, best, ["billing", "payments"], "My own invoice is wrong")
    drain(HANDLERS, on_dead)
    assert ticket(own).assigned_to_id == weaker.id
    assert ticket(own).assignment_reason == "matched: billing; 0 open"
    set_user(weaker, is_active=False)  # the requester is now the only skilled moderator: an admin takes it
    with session_scope() as s:
        decision = routing.choose_assignee(s, ["billing", "payments"], requester_id=best.id)
    assert decision.assignee is not None and decision.assignee.id == admin.id
    assert "admin fallback" in decision.reason
    # Someone else's ticket still goes to the best match.
    other = ready_for_routing(factory, factory.user(), ["billing", "payments"], "Charged twice")
    drain(HANDLERS, on_dead)
    assert ticket(other).assigned_to_id == best.id


def test_an_admin_gets_their_own_ticket_only_when_no_one_else_can_take_it(factory: Factory) -> None:
    first = factory.admin("first-admin@example.com")
    second = factory.admin("second-admin@example.com")
    give_load(factory, second, 3)  # busier, but the requester is never preferred
    own = ready_for_routing(factory, first, ["kubernetes"], "My own cluster")
    drain(HANDLERS, on_dead)
    assert ticket(own).assigned_to_id == second.id
    set_user(second, is_active=False)
    alone = ready_for_routing(factory, first, ["kubernetes"], "Another cluster")
    drain(HANDLERS, on_dead)
    t = ticket(alone)
    assert t.assigned_to_id == first.id
    assert t.assignment_reason == (
        "no moderator with the required skills (kubernetes); the requester is the only active admin, 0 open"
    )
